//! The RemoteUI panels and the IO registry: what the admin configures and panels display.
//!
//! Parameters are kept as ordered `(name, value)` string pairs, the way Calaos keeps IO
//! parameters, so both io.xml layouts round-trip without losing attributes this crate does
//! not interpret.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::string::String;
use std::vec::Vec;

use latchkey_protocol::guard::SigningVariant;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// Most pages per panel (calaos_base `MAX_PAGES_PER_REMOTEUI`).
pub const MAX_PAGES: usize = 50;
/// Most widgets per page (calaos_base `MAX_WIDGETS_PER_PAGE`).
pub const MAX_WIDGETS_PER_PAGE: usize = 100;
/// Longest string value, in bytes (calaos_base `MAX_STRING_LENGTH`).
pub const MAX_STRING: usize = 255;
/// Most attributes on one element (params, device info, page, widget).
pub const MAX_ATTRIBUTES: usize = 64;
/// Most panels.
pub const MAX_PANELS: usize = 256;
/// Most IOs in the registry.
pub const MAX_IOS: usize = 4096;

/// Why a configuration is refused. Messages name the panel, page, widget and field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// More pages than [`MAX_PAGES`].
    TooManyPages {
        /// Panel id.
        panel: String,
        /// Pages given.
        got: usize,
    },
    /// More widgets on a page than [`MAX_WIDGETS_PER_PAGE`].
    TooManyWidgets {
        /// Panel id.
        panel: String,
        /// Page index (0-based).
        page: usize,
        /// Widgets given.
        got: usize,
    },
    /// A string longer than [`MAX_STRING`] bytes.
    StringTooLong {
        /// Where (`panel P page 1 widget 3 attribute io`).
        field: String,
        /// Its length.
        len: usize,
    },
    /// More attributes than [`MAX_ATTRIBUTES`] on one element.
    TooManyAttributes {
        /// Where.
        field: String,
    },
    /// A widget lacks `type`, `x` or `y`, or `x`/`y` is not an integer.
    BadWidget {
        /// Where.
        field: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// A required value is missing or empty, or has the wrong JSON type.
    Invalid {
        /// Which field.
        field: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// More panels or IOs than the caps.
    TooMany {
        /// What.
        what: &'static str,
        /// The cap.
        max: usize,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::TooManyPages { panel, got } => write!(
                f,
                "remote_ui {panel}: {got} pages, at most {MAX_PAGES} are allowed"
            ),
            ConfigError::TooManyWidgets { panel, page, got } => write!(
                f,
                "remote_ui {panel} page {}: {got} widgets, at most {MAX_WIDGETS_PER_PAGE} are allowed",
                page + 1
            ),
            ConfigError::StringTooLong { field, len } => {
                write!(f, "{field}: {len} bytes, at most {MAX_STRING} are allowed")
            }
            ConfigError::TooManyAttributes { field } => {
                write!(f, "{field}: more than {MAX_ATTRIBUTES} attributes")
            }
            ConfigError::BadWidget { field, problem } => write!(f, "{field}: {problem}"),
            ConfigError::Invalid { field, problem } => write!(f, "{field}: {problem}"),
            ConfigError::TooMany { what, max } => write!(f, "more than {max} {what}"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Ordered string attributes.
pub type Attrs = Vec<(String, String)>;

fn attr<'a>(attrs: &'a Attrs, name: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn set_attr(attrs: &mut Attrs, name: &str, value: &str) {
    if let Some(slot) = attrs.iter_mut().find(|(k, _)| k == name) {
        slot.1 = String::from(value);
    } else {
        attrs.push((String::from(name), String::from(value)));
    }
}

/// One widget: `type`, integer `x` and `y`, and any other attributes (`io`, `w`, `h`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Widget {
    /// Attributes in order.
    pub attrs: Attrs,
}

impl Widget {
    /// The IO this widget shows: `io` (the design) or `io_id` (calaos_base's extraction).
    #[must_use]
    pub fn io(&self) -> Option<&str> {
        attr(&self.attrs, "io")
            .or_else(|| attr(&self.attrs, "io_id"))
            .filter(|s| !s.is_empty())
    }

    /// Attribute `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        attr(&self.attrs, name)
    }
}

/// One page: attributes (`id`, `name`, …) and widgets.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Page {
    /// Attributes in order.
    pub attrs: Attrs,
    /// Widgets in order.
    pub widgets: Vec<Widget>,
}

/// A provisioned panel's credentials.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// The bearer token (64 hex).
    pub auth_token: String,
    /// The HMAC secret (64 hex; its ASCII text is the key, as in calaos_base).
    pub device_secret: String,
    /// Which signing string the device uses, chosen by its provisioning request.
    pub variant: Variant,
    /// When it was provisioned (Unix seconds), when known.
    pub provisioned_at: Option<u64>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("variant", &self.variant)
            .finish_non_exhaustive()
    }
}

/// The two dialects, as stored (a serde-friendly mirror of [`SigningVariant`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Variant {
    /// The RemoteUI design document (`provisioning_code`, `token+timestamp+nonce`).
    RemoteUiDesign,
    /// calaos_base (`code`, `token:timestamp:nonce`).
    CalaosBase,
}

impl Variant {
    /// The guard's variant.
    #[must_use]
    pub fn signing(self) -> SigningVariant {
        match self {
            Variant::RemoteUiDesign => SigningVariant::RemoteUiDesign,
            Variant::CalaosBase => SigningVariant::CalaosBase,
        }
    }

    /// The stable name (`remote-ui-design`, `calaos-base`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        self.signing().as_str()
    }

    /// The variant named `s`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Variant> {
        match s {
            "remote-ui-design" => Some(Variant::RemoteUiDesign),
            "calaos-base" => Some(Variant::CalaosBase),
            _ => None,
        }
    }
}

/// A RemoteUI panel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteUi {
    /// Its id (the Calaos IO id).
    pub id: String,
    /// The code the admin gave for its first provisioning.
    pub provisioning_code: String,
    /// Set once provisioned.
    pub credentials: Option<Credentials>,
    /// Other parameters in order (`name`, `room`, `theme`, `brightness`, `grid_w`, …).
    pub params: Attrs,
    /// What the device said about itself (`type`, `mac_address`, …).
    pub device_info: Attrs,
    /// Pages.
    pub pages: Vec<Page>,
    /// When the panel last connected or sent something (Unix seconds).
    #[serde(default)]
    pub last_seen: Option<u64>,
}

impl RemoteUi {
    /// A panel waiting for a device with `code`.
    #[must_use]
    pub fn new(id: &str, name: &str, code: &str) -> RemoteUi {
        RemoteUi {
            id: String::from(id),
            provisioning_code: String::from(code),
            credentials: None,
            params: vec![(String::from("name"), String::from(name))],
            device_info: Vec::new(),
            pages: Vec::new(),
            last_seen: None,
        }
    }

    /// Parameter `name`.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        attr(&self.params, name)
    }

    /// Sets parameter `name`.
    pub fn set_param(&mut self, name: &str, value: &str) {
        set_attr(&mut self.params, name, value);
    }

    /// Sets device-info entry `name`.
    pub fn set_device_info(&mut self, name: &str, value: &str) {
        set_attr(&mut self.device_info, name, value);
    }

    /// Its display name.
    #[must_use]
    pub fn name(&self) -> &str {
        self.param("name").unwrap_or("")
    }

    /// Whether it holds credentials.
    #[must_use]
    pub fn is_provisioned(&self) -> bool {
        self.credentials.is_some()
    }

    /// The IO ids its widgets reference, sorted and without duplicates.
    #[must_use]
    pub fn referenced_ios(&self) -> BTreeSet<&str> {
        self.pages
            .iter()
            .flat_map(|p| p.widgets.iter())
            .filter_map(Widget::io)
            .collect()
    }

    /// Checks every limit (pages, widgets, string sizes, attribute counts, widget shape).
    ///
    /// # Errors
    ///
    /// The first [`ConfigError`] found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let p = &self.id;
        check_str(&format!("remote_ui {p} id"), &self.id)?;
        if self.id.is_empty() {
            return Err(ConfigError::Invalid {
                field: String::from("remote_ui id"),
                problem: "must not be empty",
            });
        }
        check_str(
            &format!("remote_ui {p} provisioning_code"),
            &self.provisioning_code,
        )?;
        if let Some(c) = &self.credentials {
            check_str(&format!("remote_ui {p} auth_token"), &c.auth_token)?;
            check_str(&format!("remote_ui {p} device_secret"), &c.device_secret)?;
        }
        check_attrs(&format!("remote_ui {p} parameter"), &self.params)?;
        check_attrs(&format!("remote_ui {p} device_info"), &self.device_info)?;
        if self.pages.len() > MAX_PAGES {
            return Err(ConfigError::TooManyPages {
                panel: p.clone(),
                got: self.pages.len(),
            });
        }
        for (i, page) in self.pages.iter().enumerate() {
            check_attrs(&format!("remote_ui {p} page {}", i + 1), &page.attrs)?;
            if page.widgets.len() > MAX_WIDGETS_PER_PAGE {
                return Err(ConfigError::TooManyWidgets {
                    panel: p.clone(),
                    page: i,
                    got: page.widgets.len(),
                });
            }
            for (j, w) in page.widgets.iter().enumerate() {
                let field = format!("remote_ui {p} page {} widget {}", i + 1, j + 1);
                check_attrs(&field, &w.attrs)?;
                if w.get("type").is_none_or(str::is_empty) {
                    return Err(ConfigError::BadWidget {
                        field,
                        problem: "needs a type",
                    });
                }
                for xy in ["x", "y"] {
                    match w.get(xy) {
                        None => {
                            return Err(ConfigError::BadWidget {
                                field,
                                problem: "needs x and y",
                            });
                        }
                        Some(v) if v.trim().parse::<i32>().is_err() => {
                            return Err(ConfigError::BadWidget {
                                field,
                                problem: "x and y must be integers",
                            });
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        Ok(())
    }

    /// The pages as JSON, for a device of `variant`: `x`/`y` as integers (both), `w`/`h`
    /// as integers for the design (its examples), as strings for calaos_base (as it stores
    /// them).
    #[must_use]
    pub fn pages_json(&self, variant: Variant) -> Value {
        let numeric: &[&str] = match variant {
            Variant::RemoteUiDesign => &["x", "y", "w", "h"],
            Variant::CalaosBase => &["x", "y"],
        };
        Value::Array(
            self.pages
                .iter()
                .map(|page| {
                    let mut o = Map::new();
                    for (k, v) in &page.attrs {
                        o.insert(k.clone(), Value::String(v.clone()));
                    }
                    let widgets = page
                        .widgets
                        .iter()
                        .map(|w| {
                            let mut wo = Map::new();
                            for (k, v) in &w.attrs {
                                let val = if numeric.contains(&k.as_str()) {
                                    v.trim()
                                        .parse::<i64>()
                                        .map_or_else(|_| Value::String(v.clone()), Value::from)
                                } else {
                                    Value::String(v.clone())
                                };
                                wo.insert(k.clone(), val);
                            }
                            Value::Object(wo)
                        })
                        .collect();
                    o.insert(String::from("widgets"), Value::Array(widgets));
                    Value::Object(o)
                })
                .collect(),
        )
    }

    fn int_param(&self, name: &str, default: i64) -> i64 {
        self.param(name)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(default)
    }

    /// The configuration both dialects answer `remote_ui_get_config` with (calaos_base's
    /// `getRemoteUIConfigMessage`, the design's `config` object): name, room, theme,
    /// brightness, timeout, pages.
    #[must_use]
    pub fn config_json(&self, variant: Variant) -> Value {
        json!({
            "name": self.name(),
            "room": self.param("room").unwrap_or(""),
            "theme": self.param("theme").unwrap_or(""),
            "brightness": self.int_param("brightness", 100),
            "timeout": self.int_param("timeout", 30),
            "pages": self.pages_json(variant),
        })
    }

    /// calaos_base's `remote_ui_config_update` data: name, brightness, grid size, the
    /// screensaver settings, pages, room and the referenced IOs' items.
    #[must_use]
    pub fn calaos_config_update(&self, ios: &IoRegistry) -> Value {
        let mut o = Map::new();
        o.insert("name".into(), self.name().into());
        o.insert(
            "brightness".into(),
            self.int_param("brightness", 100).into(),
        );
        o.insert("grid_height".into(), self.int_param("grid_h", 3).into());
        o.insert("grid_width".into(), self.int_param("grid_w", 3).into());
        for k in [
            "screensaver_timeout",
            "screensaver_dimming",
            "screensaver_mode",
            "screensaver_clock_timezone",
            "screensaver_clock_format",
            "screensaver_clock_show_date",
            "screensaver_clock_date_format",
            "screensaver_clock_seconds",
        ] {
            o.insert(k.into(), self.param(k).unwrap_or("").into());
        }
        o.insert("pages".into(), self.pages_json(Variant::CalaosBase));
        if let Some(room) = self.param("room") {
            o.insert(
                "room".into(),
                json!({"name": room, "type": self.param("room_type").unwrap_or(""), "hits": 0}),
            );
        }
        let items: Vec<Value> = self
            .referenced_ios()
            .into_iter()
            .filter_map(|id| ios.get(id))
            .map(Io::to_json)
            .collect();
        o.insert("io_items".into(), Value::Array(items));
        Value::Object(o)
    }
}

fn check_str(field: &str, s: &str) -> Result<(), ConfigError> {
    if s.len() > MAX_STRING {
        return Err(ConfigError::StringTooLong {
            field: String::from(field),
            len: s.len(),
        });
    }
    Ok(())
}

fn check_attrs(field: &str, attrs: &Attrs) -> Result<(), ConfigError> {
    if attrs.len() > MAX_ATTRIBUTES {
        return Err(ConfigError::TooManyAttributes {
            field: String::from(field),
        });
    }
    for (k, v) in attrs {
        check_str(&format!("{field} name"), k)?;
        check_str(&format!("{field} {k}"), v)?;
    }
    Ok(())
}

/// One IO: something a panel can show and set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Io {
    /// Its id.
    pub id: String,
    /// Its type (`light`, `temp`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Its display name.
    pub name: String,
    /// Its state, as text (`true`, `22.5`, …).
    pub state: String,
    /// Its GUI type (defaults to the type).
    #[serde(default)]
    pub gui_type: String,
}

impl Io {
    /// The design's IO object: id, type, state, gui_type, name.
    #[must_use]
    pub fn to_json(&self) -> Value {
        let gui = if self.gui_type.is_empty() {
            &self.kind
        } else {
            &self.gui_type
        };
        json!({"id": self.id, "type": self.kind, "state": self.state, "gui_type": gui, "name": self.name})
    }

    /// Checks string sizes.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.id.is_empty() {
            return Err(ConfigError::Invalid {
                field: String::from("io id"),
                problem: "must not be empty",
            });
        }
        for (f, v) in [
            ("id", &self.id),
            ("type", &self.kind),
            ("name", &self.name),
            ("state", &self.state),
            ("gui_type", &self.gui_type),
        ] {
            check_str(&format!("io {} {f}", self.id), v)?;
        }
        Ok(())
    }
}

/// The IOs, by id.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IoRegistry {
    ios: BTreeMap<String, Io>,
}

impl IoRegistry {
    /// IO `id`.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Io> {
        self.ios.get(id)
    }

    /// Adds or replaces `io`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`] for oversized fields or a full registry.
    pub fn upsert(&mut self, io: Io) -> Result<(), ConfigError> {
        io.validate()?;
        if !self.ios.contains_key(&io.id) && self.ios.len() >= MAX_IOS {
            return Err(ConfigError::TooMany {
                what: "IOs",
                max: MAX_IOS,
            });
        }
        self.ios.insert(io.id.clone(), io);
        Ok(())
    }

    /// Sets IO `id`'s state; whether it changed (`None` when there is no such IO).
    ///
    /// # Errors
    ///
    /// [`ConfigError::StringTooLong`] for an oversized state.
    pub fn set_state(&mut self, id: &str, state: &str) -> Result<Option<bool>, ConfigError> {
        check_str(&format!("io {id} state"), state)?;
        Ok(self.ios.get_mut(id).map(|io| {
            let changed = io.state != state;
            io.state = String::from(state);
            changed
        }))
    }

    /// Removes IO `id`.
    pub fn remove(&mut self, id: &str) -> Option<Io> {
        self.ios.remove(id)
    }

    /// Every IO, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Io> {
        self.ios.values()
    }

    /// How many IOs.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ios.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ios.is_empty()
    }
}

fn json_str(v: &Value, field: &str) -> Result<String, ConfigError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        _ => Err(ConfigError::Invalid {
            field: String::from(field),
            problem: "must be a string or a number",
        }),
    }
}

/// Whether `name` can be written as an attribute name in io.xml: an ASCII letter or `_`,
/// then letters, digits, `-`, `_` or `.` (XML's Name, without `:` and non-ASCII, which
/// namespaces and Calaos do not expect). Names accepted from the admin, a device or a
/// JSON configuration are checked with it, so the export is always well-formed XML.
#[must_use]
pub fn is_attribute_name(name: &str) -> bool {
    let mut b = name.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// What [`is_attribute_name`] refuses, as an error message.
pub const ATTRIBUTE_NAME_RULE: &str =
    "is not a valid attribute name (a letter or _, then letters, digits, -, _ or .)";

/// Whether XML 1.0 can carry `c` at all (its `Char` production, §2.2): tab, line feed,
/// carriage return and everything from U+0020 on except U+FFFE and U+FFFF. Not even a
/// character reference can write the others (WFC: Legal Character).
#[must_use]
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && !matches!(c, '\u{FFFE}' | '\u{FFFF}'))
}

/// Whether io.xml can carry `value` ([`is_xml_char`] for each character). Values accepted
/// from the admin, a device or an io.xml are checked with it, so the export is always
/// well-formed XML that reads back to the same value.
#[must_use]
pub fn is_xml_text(value: &str) -> bool {
    value.chars().all(is_xml_char)
}

/// What [`is_xml_text`] refuses, as an error message.
pub const XML_TEXT_RULE: &str = "contains a character io.xml cannot carry (a control character other than tab, line feed or carriage return, or U+FFFE or U+FFFF)";

/// Reads pages from the JSON the admin API takes (the design's `pages` array: objects with
/// string attributes and a `widgets` array of objects).
///
/// # Errors
///
/// [`ConfigError`] naming the first bad field; limits are checked by
/// [`RemoteUi::validate`] afterwards, but array lengths are checked here first so a huge
/// array is refused before it is copied.
pub fn pages_from_json(panel: &str, v: &Value) -> Result<Vec<Page>, ConfigError> {
    let Value::Array(pages) = v else {
        return Err(ConfigError::Invalid {
            field: String::from("pages"),
            problem: "must be an array",
        });
    };
    if pages.len() > MAX_PAGES {
        return Err(ConfigError::TooManyPages {
            panel: String::from(panel),
            got: pages.len(),
        });
    }
    let mut out = Vec::with_capacity(pages.len());
    for (i, p) in pages.iter().enumerate() {
        let Value::Object(po) = p else {
            return Err(ConfigError::Invalid {
                field: format!("pages[{i}]"),
                problem: "must be an object",
            });
        };
        let mut page = Page::default();
        for (k, v) in po {
            if k == "widgets" {
                let Value::Array(ws) = v else {
                    return Err(ConfigError::Invalid {
                        field: format!("pages[{i}].widgets"),
                        problem: "must be an array",
                    });
                };
                if ws.len() > MAX_WIDGETS_PER_PAGE {
                    return Err(ConfigError::TooManyWidgets {
                        panel: String::from(panel),
                        page: i,
                        got: ws.len(),
                    });
                }
                for (j, w) in ws.iter().enumerate() {
                    let Value::Object(wo) = w else {
                        return Err(ConfigError::Invalid {
                            field: format!("pages[{i}].widgets[{j}]"),
                            problem: "must be an object",
                        });
                    };
                    if wo.len() > MAX_ATTRIBUTES {
                        return Err(ConfigError::TooManyAttributes {
                            field: format!("pages[{i}].widgets[{j}]"),
                        });
                    }
                    let mut attrs = Vec::new();
                    for (wk, wv) in wo {
                        if !is_attribute_name(wk) {
                            return Err(ConfigError::Invalid {
                                field: format!("pages[{i}].widgets[{j}].{wk}"),
                                problem: ATTRIBUTE_NAME_RULE,
                            });
                        }
                        attrs.push((
                            wk.clone(),
                            xml_value(wv, &format!("pages[{i}].widgets[{j}].{wk}"))?,
                        ));
                    }
                    page.widgets.push(Widget { attrs });
                }
            } else {
                if page.attrs.len() >= MAX_ATTRIBUTES {
                    return Err(ConfigError::TooManyAttributes {
                        field: format!("pages[{i}]"),
                    });
                }
                if !is_attribute_name(k) {
                    return Err(ConfigError::Invalid {
                        field: format!("pages[{i}].{k}"),
                        problem: ATTRIBUTE_NAME_RULE,
                    });
                }
                page.attrs
                    .push((k.clone(), xml_value(v, &format!("pages[{i}].{k}"))?));
            }
        }
        out.push(page);
    }
    Ok(out)
}

/// Reads a string-or-number JSON value that io.xml can carry ([`is_xml_text`]).
fn xml_value(v: &Value, field: &str) -> Result<String, ConfigError> {
    let text = json_str(v, field)?;
    if !is_xml_text(&text) {
        return Err(ConfigError::Invalid {
            field: String::from(field),
            problem: XML_TEXT_RULE,
        });
    }
    Ok(text)
}

/// Reads a string-or-number JSON value.
pub(crate) fn value_text(v: &Value, field: &str) -> Result<String, ConfigError> {
    json_str(v, field)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget(io: &str) -> Widget {
        Widget {
            attrs: vec![
                ("type".into(), "button".into()),
                ("io".into(), io.into()),
                ("x".into(), "1".into()),
                ("y".into(), "2".into()),
            ],
        }
    }

    #[test]
    fn referenced_ios_come_from_io_and_io_id_attributes() {
        let mut ui = RemoteUi::new("p", "P", "C");
        let mut w2 = widget("");
        w2.attrs[1] = ("io_id".into(), "b".into());
        ui.pages.push(Page {
            attrs: vec![],
            widgets: vec![widget("a"), w2, widget("a")],
        });
        assert_eq!(
            ui.referenced_ios().into_iter().collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn widget_without_integer_position_is_refused_with_its_place() {
        let mut ui = RemoteUi::new("p", "P", "C");
        let mut w = widget("a");
        w.attrs[2].1 = "left".into();
        ui.pages.push(Page {
            attrs: vec![],
            widgets: vec![w],
        });
        let e = ui.validate().unwrap_err();
        assert_eq!(
            e.to_string(),
            "remote_ui p page 1 widget 1: x and y must be integers"
        );
    }

    #[test]
    fn calaos_pages_keep_w_and_h_as_strings_the_design_makes_them_numbers() {
        let mut ui = RemoteUi::new("p", "P", "C");
        let mut w = widget("a");
        w.attrs.push(("w".into(), "100".into()));
        ui.pages.push(Page {
            attrs: vec![("id".into(), "1".into())],
            widgets: vec![w],
        });
        assert_eq!(
            ui.pages_json(Variant::CalaosBase)[0]["widgets"][0]["w"],
            "100"
        );
        assert_eq!(ui.pages_json(Variant::CalaosBase)[0]["widgets"][0]["x"], 1);
        assert_eq!(
            ui.pages_json(Variant::RemoteUiDesign)[0]["widgets"][0]["w"],
            100
        );
    }
}
