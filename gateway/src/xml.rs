//! Calaos io.xml: RemoteUIs imported from and exported to both layouts.
//!
//! * [`Layout::Room`] — calaos_base as shipped (`Room.cpp`, `IO/RemoteUI/RemoteUI.cpp`):
//!   `<calaos:remote_ui …attributes…>` inside a `<calaos:room>`, with
//!   `<calaos:device_info …attributes…/>` and `<calaos:pages><calaos:page …><calaos:widget
//!   type x y …/>`. The room's name and type become the `room` and `room_type` parameters.
//!   calaos_base's `SaveToXml` writes `device_info` as a *sibling before* the
//!   `remote_ui` element; such a sibling is attached to the next `remote_ui` here.
//! * [`Layout::Design`] — the design document (`remote-ui.md`, "XML Configuration"):
//!   `<calaos:remote_uis>` under `<calaos:home>`, one `<calaos:remote_ui id>` each, with
//!   child elements `provisioning_code`, `auth_token`, `device_secret`, `mac_address`,
//!   `<calaos:device_info>` of `<calaos:param name value/>`, `<calaos:param name value/>`
//!   for the settings, and the same pages.
//!
//! A panel is provisioned when both `auth_token` and `device_secret` are non-empty (as in
//! calaos_base); its signing variant is the layout's own (design → `token+timestamp+nonce`,
//! room → `token:timestamp:nonce`) unless a `signing_variant` parameter says otherwise.
//! Import enforces the limits of [`crate::model`] and the input caps below, with errors
//! naming the panel, page and widget. A panel that gives one parameter or device_info entry
//! twice (two `<calaos:param name="theme">`, `<calaos:mac_address>` next to
//! `<calaos:param name="mac_address">`, an attribute and a `param` of the same name) is
//! refused: calaos_base's TinyXML refuses a repeated attribute, its parameters hold one
//! value per name, and neither value could be called the one meant.
//!
//! Values are written so that they read back unchanged: tab, line feed and carriage return
//! as character references (a reader turns them into spaces in an attribute, XML 1.0
//! §3.3.3, and trims them at the ends of an element's text here), and spaces at the ends of
//! an element's text as `&#32;`. Characters XML 1.0 cannot carry at all ([`is_xml_char`])
//! are refused wherever values are accepted.

use std::string::String;
use std::vec::Vec;
use std::{fmt, format};

use quick_xml::XmlVersion;
use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::{BytesStart, Event};
use quick_xml::reader::Reader;

use crate::model::{
    ATTRIBUTE_NAME_RULE, Attrs, ConfigError, Credentials, MAX_ATTRIBUTES, MAX_PAGES, MAX_PANELS,
    MAX_STRING, MAX_WIDGETS_PER_PAGE, Page, RemoteUi, Variant, Widget, XML_TEXT_RULE,
    is_attribute_name, is_xml_char, is_xml_text,
};

/// Largest io.xml accepted (1 MiB, the request body limit).
pub const MAX_XML_BYTES: usize = 1024 * 1024;
/// Deepest element nesting accepted.
pub const MAX_DEPTH: usize = 32;
/// Most elements read.
pub const MAX_ELEMENTS: usize = 200_000;

/// The two io.xml layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Layout {
    /// calaos_base: `<calaos:remote_ui>` with attributes inside `<calaos:room>`.
    Room,
    /// The design document: a `<calaos:remote_uis>` block with child elements.
    Design,
}

/// Why an io.xml could not be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum XmlError {
    /// Larger than [`MAX_XML_BYTES`].
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// Not well-formed XML.
    Syntax {
        /// Byte offset.
        offset: u64,
        /// The parser's message.
        message: String,
    },
    /// Deeper than [`MAX_DEPTH`] or more than [`MAX_ELEMENTS`] elements.
    TooComplex,
    /// A panel without an `id`.
    MissingId {
        /// Which panel (1-based, in document order).
        index: usize,
    },
    /// Two panels with the same id or provisioning code.
    Duplicate {
        /// What is duplicated (`id` or `provisioning_code`).
        what: &'static str,
        /// The value.
        value: String,
    },
    /// A panel gives one parameter or device_info entry more than once.
    Repeated {
        /// Which panel (`remote_ui ID`, or `remote_ui number N` without an id).
        panel: String,
        /// `parameter` or `device_info entry`.
        what: &'static str,
        /// The name given more than once.
        name: String,
    },
    /// A limit or shape rule (pages, widgets, strings, attributes, widget positions).
    Config(ConfigError),
}

impl fmt::Display for XmlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XmlError::TooLarge { len } => write!(
                f,
                "io.xml is {len} bytes, at most {MAX_XML_BYTES} are accepted"
            ),
            XmlError::Syntax { offset, message } => {
                write!(f, "io.xml is not well-formed at byte {offset}: {message}")
            }
            XmlError::TooComplex => write!(
                f,
                "io.xml nests deeper than {MAX_DEPTH} or has more than {MAX_ELEMENTS} elements"
            ),
            XmlError::MissingId { index } => write!(f, "remote_ui number {index} has no id"),
            XmlError::Duplicate { what, value } => {
                write!(f, "two remote_uis have the same {what} {value:?}")
            }
            XmlError::Repeated { panel, what, name } => {
                write!(f, "{panel}: {what} {name} is given more than once")
            }
            XmlError::Config(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for XmlError {}

impl From<ConfigError> for XmlError {
    fn from(e: ConfigError) -> Self {
        XmlError::Config(e)
    }
}

fn local(qname: &str) -> &str {
    qname.rsplit(':').next().unwrap_or(qname)
}

/// The parameters that are not plain params in either layout.
const SPECIAL: [&str; 6] = [
    "id",
    "provisioning_code",
    "auth_token",
    "device_secret",
    "signing_variant",
    "provisioned_at",
];

#[derive(Default)]
struct Building {
    /// 1-based, in document order.
    index: usize,
    layout: Option<Layout>,
    /// The special parameters given so far (a second one is refused).
    given: Vec<&'static str>,
    /// The enclosing room's name and type (room layout), used unless the panel gives them.
    room: Option<(String, String)>,
    /// Whether `device_info` came from a sibling before the panel (calaos_base's save bug);
    /// the panel's own device_info replaces it.
    info_is_orphan: bool,
    id: String,
    code: String,
    token: String,
    secret: String,
    variant: Option<Variant>,
    provisioned_at: Option<u64>,
    params: Attrs,
    device_info: Attrs,
    pages: Vec<Page>,
}

impl Building {
    fn label(&self) -> String {
        if self.id.is_empty() {
            format!("remote_ui number {}", self.index)
        } else {
            format!("remote_ui {}", self.id)
        }
    }

    fn repeated(&self, what: &'static str, name: &str) -> XmlError {
        XmlError::Repeated {
            panel: self.label(),
            what,
            name: String::from(name),
        }
    }

    /// Sets parameter `k` (a special one or a plain param), refusing a second value.
    fn put(&mut self, k: &str, v: String) -> Result<(), XmlError> {
        if !is_attribute_name(k) {
            return Err(ConfigError::Invalid {
                field: format!("{} parameter {k}", self.label()),
                problem: ATTRIBUTE_NAME_RULE,
            }
            .into());
        }
        if !is_xml_text(&v) {
            return Err(ConfigError::Invalid {
                field: format!("{} {k}", self.label()),
                problem: XML_TEXT_RULE,
            }
            .into());
        }
        if let Some(special) = SPECIAL.iter().find(|s| **s == k) {
            if self.given.contains(special) {
                return Err(self.repeated("parameter", k));
            }
            self.given.push(special);
        } else if self.params.iter().any(|(x, _)| x == k) {
            return Err(self.repeated("parameter", k));
        }
        match k {
            "id" => self.id = v,
            "provisioning_code" => self.code = v,
            "auth_token" => self.token = v,
            "device_secret" => self.secret = v,
            "signing_variant" => self.variant = Variant::parse(&v),
            "provisioned_at" => self.provisioned_at = v.parse().ok(),
            _ => {
                if self.params.len() >= MAX_ATTRIBUTES {
                    return Err(ConfigError::TooManyAttributes {
                        field: format!("{} parameters", self.label()),
                    }
                    .into());
                }
                self.params.push((String::from(k), v));
            }
        }
        Ok(())
    }

    /// Adds device_info entry `k`, refusing a second value.
    fn put_info(&mut self, k: String, v: String) -> Result<(), XmlError> {
        if core::mem::take(&mut self.info_is_orphan) {
            self.device_info.clear();
        }
        if self.device_info.iter().any(|(x, _)| *x == k) {
            return Err(self.repeated("device_info entry", &k));
        }
        if self.device_info.len() >= MAX_ATTRIBUTES {
            return Err(ConfigError::TooManyAttributes {
                field: format!("{} device_info", self.label()),
            }
            .into());
        }
        self.device_info.push((k, v));
        Ok(())
    }

    fn finish(mut self) -> Result<RemoteUi, XmlError> {
        if self.id.is_empty() {
            return Err(XmlError::MissingId { index: self.index });
        }
        // The room's name and type, unless the panel gives its own.
        if let Some((rname, rtype)) = self.room.take() {
            if self.params.iter().all(|(k, _)| k != "room") {
                self.put("room", rname)?;
            }
            if !rtype.is_empty() && self.params.iter().all(|(k, _)| k != "room_type") {
                self.put("room_type", rtype)?;
            }
        }
        let layout_variant = match self.layout {
            Some(Layout::Design) => Variant::RemoteUiDesign,
            _ => Variant::CalaosBase,
        };
        let credentials =
            (!self.token.is_empty() && !self.secret.is_empty()).then(|| Credentials {
                auth_token: self.token,
                device_secret: self.secret,
                variant: self.variant.unwrap_or(layout_variant),
                provisioned_at: self.provisioned_at,
            });
        let ui = RemoteUi {
            id: self.id,
            provisioning_code: self.code,
            credentials,
            params: self.params,
            device_info: self.device_info,
            pages: self.pages,
            last_seen: None,
        };
        ui.validate()?;
        Ok(ui)
    }
}

fn attrs_of(e: &BytesStart<'_>, field: &str) -> Result<Attrs, XmlError> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| XmlError::Syntax {
            offset: 0,
            message: err.to_string(),
        })?;
        if out.len() >= MAX_ATTRIBUTES {
            return Err(ConfigError::TooManyAttributes {
                field: String::from(field),
            }
            .into());
        }
        let key = a.key.0;
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let value =
            a.normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| XmlError::Syntax {
                    offset: 0,
                    message: err.to_string(),
                })?;
        if value.len() > MAX_STRING {
            return Err(ConfigError::StringTooLong {
                field: format!("{field} {}", local(key)),
                len: value.len(),
            }
            .into());
        }
        let name = local(key);
        if !is_attribute_name(name) {
            return Err(ConfigError::Invalid {
                field: format!("{field} attribute {name}"),
                problem: ATTRIBUTE_NAME_RULE,
            }
            .into());
        }
        if !is_xml_text(&value) {
            return Err(ConfigError::Invalid {
                field: format!("{field} {name}"),
                problem: XML_TEXT_RULE,
            }
            .into());
        }
        out.push((String::from(name), value.into_owned()));
    }
    Ok(out)
}

fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// The text of an element (the design layout's `provisioning_code`, `auth_token`, …).
/// Literal whitespace at either end is layout and left out; whitespace written as a
/// character reference (`&#32;`, `&#9;`, …) or inside CDATA is content and kept, as is all
/// whitespace between content.
#[derive(Default)]
struct ElementText {
    text: String,
    /// Literal whitespace after `text`, kept if more content follows (while not too long).
    pending: String,
    pending_len: usize,
    /// Bytes of content so far; past [`MAX_STRING`], `text` stops growing.
    len: usize,
}

impl ElementText {
    fn clear(&mut self) {
        self.text.clear();
        self.pending.clear();
        self.pending_len = 0;
        self.len = 0;
    }

    /// Content taken as it is (a resolved reference, CDATA).
    fn exact(&mut self, s: &str) {
        if s.is_empty() {
            return;
        }
        self.len += self.pending_len + s.len();
        if self.len <= MAX_STRING {
            self.text.push_str(&self.pending);
            self.text.push_str(s);
        }
        self.pending.clear();
        self.pending_len = 0;
    }

    /// Character data as written.
    fn literal(&mut self, s: &str) {
        let s = if self.len == 0 {
            s.trim_start_matches(is_xml_space)
        } else {
            s
        };
        let body = s.trim_end_matches(is_xml_space);
        self.exact(body);
        if self.len > 0 {
            let ws = &s[body.len()..];
            self.pending_len += ws.len();
            if self.pending_len <= MAX_STRING {
                self.pending.push_str(ws);
            }
        }
    }

    /// The text, or its length when longer than [`MAX_STRING`].
    fn take(&mut self) -> Result<String, usize> {
        let len = self.len;
        let text = core::mem::take(&mut self.text);
        self.clear();
        if len > MAX_STRING { Err(len) } else { Ok(text) }
    }
}

fn take(attrs: &Attrs, name: &str) -> Option<String> {
    attrs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Reads every RemoteUI from an io.xml in either layout (both may appear in one file).
///
/// # Errors
///
/// [`XmlError`] naming the first problem; nothing is imported then.
pub fn import(text: &str) -> Result<Vec<RemoteUi>, XmlError> {
    if text.len() > MAX_XML_BYTES {
        return Err(XmlError::TooLarge { len: text.len() });
    }
    // Not trimmed by the reader: it would trim around every reference too ("a &amp; b"
    // would read "a&b"); ElementText trims the ends of an element's text only.
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<String> = Vec::new();
    let mut elements = 0usize;
    let mut room: Option<(String, String)> = None;
    let mut orphan_info: Option<Attrs> = None;
    let mut cur: Option<Building> = None;
    let mut text_buf = ElementText::default();
    let mut out: Vec<RemoteUi> = Vec::new();
    loop {
        let pos = reader.buffer_position();
        let ev = reader.read_event().map_err(|e| XmlError::Syntax {
            offset: pos,
            message: e.to_string(),
        })?;
        let (start, empty) = match &ev {
            Event::Start(e) => (Some(e.clone()), false),
            Event::Empty(e) => (Some(e.clone()), true),
            _ => (None, false),
        };
        if let Some(e) = start {
            elements += 1;
            if elements > MAX_ELEMENTS || stack.len() >= MAX_DEPTH {
                return Err(XmlError::TooComplex);
            }
            let name = String::from(local(e.name().0));
            let parent = stack.last().map(String::as_str);
            let field = cur.as_ref().map_or_else(
                || format!("remote_ui number {}", out.len() + 1),
                |b| format!("remote_ui {}", b.id),
            );
            text_buf.clear();
            match (name.as_str(), parent) {
                ("room", _) => {
                    let a = attrs_of(&e, "room")?;
                    room = Some((
                        take(&a, "name").unwrap_or_default(),
                        take(&a, "type").unwrap_or_default(),
                    ));
                    orphan_info = None;
                }
                ("remote_ui", Some(p)) if cur.is_none() => {
                    if out.len() >= MAX_PANELS {
                        return Err(ConfigError::TooMany {
                            what: "remote_uis",
                            max: MAX_PANELS,
                        }
                        .into());
                    }
                    let mut b = Building {
                        index: out.len() + 1,
                        ..Building::default()
                    };
                    // Errors in its attributes name the panel by its id when it has a usable one.
                    let field = e
                        .attributes()
                        .flatten()
                        .find(|a| local(a.key.0) == "id")
                        .and_then(|a| a.normalized_value(XmlVersion::Implicit1_0).ok())
                        .filter(|id| !id.is_empty() && id.len() <= MAX_STRING && is_xml_text(id))
                        .map_or(field, |id| format!("remote_ui {id}"));
                    let a = attrs_of(&e, &field)?;
                    if let Some(id) = take(&a, "id") {
                        b.put("id", id)?;
                    }
                    if p == "remote_uis" {
                        b.layout = Some(Layout::Design);
                    } else {
                        b.layout = Some(Layout::Room);
                        for (k, v) in a {
                            if k != "id" {
                                b.put(&k, v)?;
                            }
                        }
                        b.room = room.clone();
                        if let Some(info) = orphan_info.take() {
                            b.device_info = info;
                            b.info_is_orphan = true;
                        }
                    }
                    cur = Some(b);
                    if empty {
                        let b = cur.take().unwrap_or_default();
                        out.push(b.finish()?);
                        continue;
                    }
                }
                ("device_info", Some("room")) if cur.is_none() => {
                    orphan_info = Some(attrs_of(&e, "device_info")?);
                }
                ("device_info", Some("remote_ui")) => {
                    if let Some(b) = cur.as_mut() {
                        for (k, v) in attrs_of(&e, &format!("{field} device_info"))? {
                            b.put_info(k, v)?;
                        }
                    }
                }
                ("param", Some(p)) => {
                    if let Some(b) = cur.as_mut() {
                        let a = attrs_of(&e, &format!("{field} param"))?;
                        if let Some(n) = take(&a, "name") {
                            if !is_attribute_name(&n) {
                                return Err(ConfigError::Invalid {
                                    field: format!("{field} param {n}"),
                                    problem: ATTRIBUTE_NAME_RULE,
                                }
                                .into());
                            }
                            let v = take(&a, "value").unwrap_or_default();
                            if p == "device_info" {
                                b.put_info(n, v)?;
                            } else if p == "remote_ui" {
                                b.put(&n, v)?;
                            }
                        }
                    }
                }
                ("page", Some("pages")) => {
                    if let Some(b) = cur.as_mut() {
                        if b.pages.len() >= MAX_PAGES {
                            return Err(ConfigError::TooManyPages {
                                panel: b.id.clone(),
                                got: b.pages.len() + 1,
                            }
                            .into());
                        }
                        let a = attrs_of(&e, &format!("{field} page {}", b.pages.len() + 1))?;
                        b.pages.push(Page {
                            attrs: a,
                            widgets: Vec::new(),
                        });
                    }
                }
                ("widget", Some("page")) => {
                    if let Some(b) = cur.as_mut() {
                        let id = b.id.clone();
                        let page_index = b.pages.len().saturating_sub(1);
                        if let Some(page) = b.pages.last_mut() {
                            if page.widgets.len() >= MAX_WIDGETS_PER_PAGE {
                                return Err(ConfigError::TooManyWidgets {
                                    panel: id,
                                    page: page_index,
                                    got: page.widgets.len() + 1,
                                }
                                .into());
                            }
                            let a = attrs_of(&e, &format!("{field} widget"))?;
                            page.widgets.push(Widget { attrs: a });
                        }
                    }
                }
                _ => {}
            }
            if !empty {
                stack.push(name);
            }
            continue;
        }
        match ev {
            Event::Text(t) => text_buf.literal(&t.xml10_content()),
            Event::CData(t) => text_buf.exact(&t.xml10_content()),
            Event::GeneralRef(r) => match r.resolve_char_ref() {
                Ok(Some(c)) => text_buf.exact(c.encode_utf8(&mut [0; 4])),
                Ok(None) => {
                    if let Some(s) = resolve_predefined_entity(&r.xml10_content()) {
                        text_buf.exact(s);
                    }
                }
                // `&#0;`, `&#xD800;`, `&#x110000;`, `&#z;`: not well-formed.
                Err(e) => {
                    return Err(XmlError::Syntax {
                        offset: pos,
                        message: e.to_string(),
                    });
                }
            },
            Event::End(_) => {
                let Some(name) = stack.pop() else {
                    continue;
                };
                let parent = stack.last().map(String::as_str);
                match (name.as_str(), parent) {
                    ("remote_ui", _) if cur.is_some() => {
                        let b = cur.take().unwrap_or_default();
                        out.push(b.finish()?);
                    }
                    ("room", _) => room = None,
                    (child, Some("remote_ui")) => {
                        if let Some(b) = cur.as_mut()
                            && b.layout == Some(Layout::Design)
                            && !matches!(child, "device_info" | "pages" | "param")
                        {
                            let v = text_buf.take().map_err(|len| ConfigError::StringTooLong {
                                field: format!("{} {child}", b.label()),
                                len,
                            })?;
                            b.put(child, v)?;
                        }
                    }
                    _ => {}
                }
                text_buf.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    for (i, a) in out.iter().enumerate() {
        for b in &out[..i] {
            if a.id == b.id {
                return Err(XmlError::Duplicate {
                    what: "id",
                    value: a.id.clone(),
                });
            }
            if !a.provisioning_code.is_empty() && a.provisioning_code == b.provisioning_code {
                return Err(XmlError::Duplicate {
                    what: "provisioning_code",
                    value: a.provisioning_code.clone(),
                });
            }
        }
    }
    Ok(out)
}

/// Writes `v` escaped so that it reads back unchanged: markup characters and quotes as
/// entities; tab, line feed and carriage return as character references (an attribute
/// value would read them as spaces, XML 1.0 §3.3.3; an element's text would lose them at its
/// ends); in an element's text (`element_text`), spaces at either end as `&#32;`. A
/// character XML 1.0 cannot carry at all (possible only in state from before values were
/// checked where they are accepted) is written as U+FFFD, so the document stays well-formed.
fn push_escaped(out: &mut String, v: &str, element_text: bool) {
    let lead = v.len() - v.trim_start_matches(' ').len();
    let trail = v.trim_end_matches(' ').len();
    for (i, c) in v.char_indices() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            ' ' if element_text && (i < lead || i >= trail) => out.push_str("&#32;"),
            c if !is_xml_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// One attribute; a name XML cannot carry (possible only in state from before names were
/// checked where they are accepted) is left out, so the document stays well-formed.
fn attr(out: &mut String, k: &str, v: &str) {
    if !is_attribute_name(k) {
        return;
    }
    out.push(' ');
    out.push_str(k);
    out.push_str("=\"");
    push_escaped(out, v, false);
    out.push('"');
}

/// The entries of `attrs` whose name did not come earlier: the first is the one
/// [`RemoteUi::param`] reads and `set_param` changes. A repeated name is possible only in
/// state from before imports refused it; written twice it would make an element with a
/// repeated attribute (not well-formed) or an io.xml the import refuses.
fn first_of_each(attrs: &Attrs) -> impl Iterator<Item = (&str, &str)> {
    attrs
        .iter()
        .enumerate()
        .filter(|(i, (k, _))| !attrs[..*i].iter().any(|(x, _)| x == k))
        .map(|(_, (k, v))| (k.as_str(), v.as_str()))
}

fn pages_xml(out: &mut String, pages: &[Page], indent: &str) {
    if pages.is_empty() {
        return;
    }
    out.push_str(&format!("{indent}<calaos:pages>\n"));
    for p in pages {
        out.push_str(&format!("{indent}  <calaos:page"));
        for (k, v) in first_of_each(&p.attrs) {
            attr(out, k, v);
        }
        if p.widgets.is_empty() {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        for w in &p.widgets {
            out.push_str(&format!("{indent}    <calaos:widget"));
            for (k, v) in first_of_each(&w.attrs) {
                attr(out, k, v);
            }
            out.push_str("/>\n");
        }
        out.push_str(&format!("{indent}  </calaos:page>\n"));
    }
    out.push_str(&format!("{indent}</calaos:pages>\n"));
}

fn variant_note(p: &RemoteUi, layout_variant: Variant) -> Option<&'static str> {
    p.credentials
        .as_ref()
        .filter(|c| c.variant != layout_variant)
        .map(|c| c.variant.as_str())
}

/// Writes `panels` as an io.xml in `layout` (UTF-8, two-space indentation).
#[must_use]
pub fn export(panels: &[RemoteUi], layout: Layout) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    match layout {
        Layout::Design => {
            out.push_str("<calaos:config xmlns:calaos=\"http://www.calaos.fr\">\n  <calaos:home>\n    <calaos:remote_uis>\n");
            for p in panels {
                out.push_str("      <calaos:remote_ui");
                attr(&mut out, "id", &p.id);
                out.push_str(">\n");
                let el = |out: &mut String, k: &str, v: &str| {
                    out.push_str(&format!("        <calaos:{k}>"));
                    push_escaped(out, v, true);
                    out.push_str(&format!("</calaos:{k}>\n"));
                };
                el(&mut out, "provisioning_code", &p.provisioning_code);
                if let Some(c) = &p.credentials {
                    el(&mut out, "auth_token", &c.auth_token);
                    el(&mut out, "device_secret", &c.device_secret);
                }
                if let Some(mac) = p.param("mac_address") {
                    el(&mut out, "mac_address", mac);
                }
                if !p.device_info.is_empty() {
                    out.push_str("        <calaos:device_info>\n");
                    for (k, v) in first_of_each(&p.device_info) {
                        out.push_str("          <calaos:param");
                        attr(&mut out, "name", k);
                        attr(&mut out, "value", v);
                        out.push_str("/>\n");
                    }
                    out.push_str("        </calaos:device_info>\n");
                }
                let mut param = |k: &str, v: &str| {
                    out.push_str("        <calaos:param");
                    attr(&mut out, "name", k);
                    attr(&mut out, "value", v);
                    out.push_str("/>\n");
                };
                for (k, v) in first_of_each(&p.params) {
                    if k != "mac_address" && !SPECIAL.contains(&k) {
                        param(k, v);
                    }
                }
                if let Some(v) = variant_note(p, Variant::RemoteUiDesign) {
                    param("signing_variant", v);
                }
                if let Some(t) = p.credentials.as_ref().and_then(|c| c.provisioned_at) {
                    param("provisioned_at", &t.to_string());
                }
                pages_xml(&mut out, &p.pages, "        ");
                out.push_str("      </calaos:remote_ui>\n");
            }
            out.push_str("    </calaos:remote_uis>\n  </calaos:home>\n</calaos:config>\n");
        }
        Layout::Room => {
            out.push_str(
                "<calaos:ioconfig xmlns:calaos=\"http://www.calaos.fr\">\n  <calaos:home>\n",
            );
            let mut rooms: Vec<(&str, &str)> = Vec::new();
            for p in panels {
                let r = (
                    p.param("room").unwrap_or(""),
                    p.param("room_type").unwrap_or(""),
                );
                if !rooms.contains(&r) {
                    rooms.push(r);
                }
            }
            for (rname, rtype) in rooms {
                out.push_str("    <calaos:room");
                attr(&mut out, "name", rname);
                attr(&mut out, "type", rtype);
                attr(&mut out, "hits", "0");
                out.push_str(">\n");
                for p in panels.iter().filter(|p| {
                    p.param("room").unwrap_or("") == rname
                        && p.param("room_type").unwrap_or("") == rtype
                }) {
                    out.push_str("      <calaos:remote_ui");
                    attr(&mut out, "id", &p.id);
                    for (k, v) in first_of_each(&p.params) {
                        if k != "room" && k != "room_type" && !SPECIAL.contains(&k) {
                            attr(&mut out, k, v);
                        }
                    }
                    if p.param("type").is_none() {
                        attr(&mut out, "type", "RemoteUI");
                    }
                    if p.param("gui_type").is_none() {
                        attr(&mut out, "gui_type", "remote_ui");
                    }
                    attr(&mut out, "provisioning_code", &p.provisioning_code);
                    if let Some(c) = &p.credentials {
                        attr(&mut out, "auth_token", &c.auth_token);
                        attr(&mut out, "device_secret", &c.device_secret);
                        if let Some(t) = c.provisioned_at {
                            attr(&mut out, "provisioned_at", &t.to_string());
                        }
                    }
                    if let Some(v) = variant_note(p, Variant::CalaosBase) {
                        attr(&mut out, "signing_variant", v);
                    }
                    out.push_str(">\n");
                    if !p.device_info.is_empty() {
                        out.push_str("        <calaos:device_info");
                        for (k, v) in first_of_each(&p.device_info) {
                            attr(&mut out, k, v);
                        }
                        out.push_str("/>\n");
                    }
                    pages_xml(&mut out, &p.pages, "        ");
                    out.push_str("      </calaos:remote_ui>\n");
                }
                out.push_str("    </calaos:room>\n");
            }
            out.push_str("  </calaos:home>\n</calaos:ioconfig>\n");
        }
    }
    out
}
