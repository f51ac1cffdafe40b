//! Calaos io.xml in both layouts, and property tests for limits and state round trips.

use latchkey_gateway::model::{Page, RemoteUi, Variant, Widget, pages_from_json};
use latchkey_gateway::xml::{Layout, XmlError, export, import};
use proptest::prelude::*;

const DESIGN: &str = include_str!("fixtures/design_io.xml");
const CALAOS: &str = include_str!("fixtures/calaos_base_io.xml");

#[test]
fn design_document_example_imports_with_every_value() {
    let panels = import(DESIGN).unwrap();
    assert_eq!(panels.len(), 1);
    let p = &panels[0];
    assert_eq!(p.id, "remote_ui_ABC123");
    assert_eq!(p.provisioning_code, "ABC123");
    let c = p.credentials.as_ref().unwrap();
    assert_eq!(
        c.auth_token,
        "a7f3b5d2e9c1b4a6f8e3d5c2a9b7e4d6c1f8a5e2d9b6c3f0a7d4b1e8c5a2f9d6"
    );
    assert_eq!(c.device_secret, "7f3b5a2d9e1c4b6a...");
    assert_eq!(c.variant, Variant::RemoteUiDesign);
    assert_eq!(p.param("mac_address"), Some("AA:BB:CC:DD:EE:FF"));
    assert_eq!(p.name(), "Living Room Screen");
    assert_eq!(p.param("brightness"), Some("80"));
    assert_eq!(p.device_info.len(), 5);
    assert_eq!(p.device_info[4].1, "{'screen_resolution':'480x320'}");
    assert_eq!(p.pages.len(), 2);
    assert_eq!(p.pages[0].widgets[1].get("io"), Some("living_room_temp"));
    let ios: Vec<&str> = p.referenced_ios().into_iter().collect();
    assert_eq!(
        ios,
        [
            "living_room_light",
            "living_room_temp",
            "living_room_thermostat"
        ]
    );
}

#[test]
fn design_example_round_trips_in_its_own_layout() {
    let first = import(DESIGN).unwrap();
    let again = import(&export(&first, Layout::Design)).unwrap();
    assert_eq!(first, again);
}

#[test]
fn calaos_base_example_imports_rooms_attributes_and_round_trips() {
    let panels = import(CALAOS).unwrap();
    assert_eq!(panels.len(), 2);
    let p = &panels[0];
    assert_eq!(p.id, "io_42");
    assert_eq!(p.param("room"), Some("Salon"));
    assert_eq!(p.param("grid_w"), Some("3"));
    assert_eq!(p.credentials.as_ref().unwrap().variant, Variant::CalaosBase);
    assert_eq!(p.device_info[0], ("type".into(), "esp32p4".into()));
    assert_eq!(p.pages[0].name_attr(), Some("Lumières"));
    assert_eq!(
        p.referenced_ios().into_iter().collect::<Vec<_>>(),
        ["output_0"]
    );
    assert!(!panels[1].is_provisioned());
    let text = export(&panels, Layout::Room);
    assert!(text.contains("<calaos:room name=\"Cuisine\" type=\"kitchen\" hits=\"0\">"));
    assert_eq!(import(&text).unwrap(), panels);
}

trait PageName {
    fn name_attr(&self) -> Option<&str>;
}
impl PageName for Page {
    fn name_attr(&self) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == "name")
            .map(|(_, v)| v.as_str())
    }
}

#[test]
fn layouts_convert_into_each_other_keeping_credentials_and_variant() {
    let design = import(DESIGN).unwrap();
    let as_room = import(&export(&design, Layout::Room)).unwrap();
    assert_eq!(as_room[0].credentials, design[0].credentials);
    assert_eq!(as_room[0].pages, design[0].pages);
    assert_eq!(as_room[0].device_info, design[0].device_info);
    let calaos = import(CALAOS).unwrap();
    let as_design = import(&export(&calaos, Layout::Design)).unwrap();
    assert_eq!(
        as_design[0].credentials.as_ref().unwrap().variant,
        Variant::CalaosBase
    );
}

#[test]
fn calaos_save_bug_device_info_sibling_is_attached_to_the_next_panel() {
    let xml = r#"<calaos:ioconfig><calaos:home><calaos:room name="R" type="t">
        <calaos:device_info type="esp32" mac_address="m"/>
        <calaos:remote_ui id="a" provisioning_code="C0DE01"/>
    </calaos:room></calaos:home></calaos:ioconfig>"#;
    let p = import(xml).unwrap();
    assert_eq!(p[0].device_info[0], ("type".into(), "esp32".into()));
}

#[test]
fn import_limits_name_where_they_were_broken() {
    let widgets: String = (0..101)
        .map(|i| format!(r#"<calaos:widget type="b" x="{i}" y="0"/>"#))
        .collect();
    let xml = format!(
        r#"<calaos:room name="R"><calaos:remote_ui id="big"><calaos:pages><calaos:page id="1">{widgets}</calaos:page></calaos:pages></calaos:remote_ui></calaos:room>"#
    );
    assert_eq!(
        import(&xml).unwrap_err().to_string(),
        "remote_ui big page 1: 101 widgets, at most 100 are allowed"
    );
    let pages: String = (0..51)
        .map(|i| format!(r#"<calaos:page id="{i}"/>"#))
        .collect();
    let xml = format!(
        r#"<calaos:room name="R"><calaos:remote_ui id="big"><calaos:pages>{pages}</calaos:pages></calaos:remote_ui></calaos:room>"#
    );
    assert_eq!(
        import(&xml).unwrap_err().to_string(),
        "remote_ui big: 51 pages, at most 50 are allowed"
    );
    let xml = format!(
        r#"<calaos:room name="R"><calaos:remote_ui id="x" name="{}"/></calaos:room>"#,
        "n".repeat(256)
    );
    assert!(
        import(&xml)
            .unwrap_err()
            .to_string()
            .contains("256 bytes, at most 255")
    );
    let xml = r#"<calaos:room name="R"><calaos:remote_ui id="x"><calaos:pages><calaos:page><calaos:widget type="b" x="left" y="0"/></calaos:page></calaos:pages></calaos:remote_ui></calaos:room>"#;
    assert_eq!(
        import(xml).unwrap_err().to_string(),
        "remote_ui x page 1 widget 1: x and y must be integers"
    );
    let xml = r#"<calaos:room><calaos:remote_ui id="x"/><calaos:remote_ui id="x"/></calaos:room>"#;
    assert!(matches!(
        import(xml),
        Err(XmlError::Duplicate { what: "id", .. })
    ));
    assert!(matches!(import("<a><b></a>"), Err(XmlError::Syntax { .. })));
    let deep = "<a>".repeat(40);
    assert_eq!(import(&deep), Err(XmlError::TooComplex));
}

fn arb_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 _<>&\"'é-]{0,12}"
}

fn arb_panel() -> impl Strategy<Value = RemoteUi> {
    (
        "[a-z][a-z0-9_]{0,10}",
        "[A-Z0-9]{4,8}",
        proptest::option::of(("[0-9a-f]{64}", "[0-9a-f]{64}", any::<bool>())),
        proptest::collection::vec(("[a-z][a-z_]{0,8}", arb_text()), 0..5),
        proptest::collection::vec(("[a-z][a-z_]{0,8}", arb_text()), 0..4),
        proptest::collection::vec(
            (
                proptest::collection::vec(("[a-z]{1,6}", arb_text()), 0..3),
                proptest::collection::vec(
                    (
                        "[a-z]{1,6}",
                        -500i32..500,
                        -500i32..500,
                        proptest::option::of("[a-z_]{1,8}"),
                    ),
                    0..4,
                ),
            ),
            0..4,
        ),
    )
        .prop_map(|(id, code, creds, params, info, pages)| {
            let mut p = RemoteUi::new(&id, "n", &code);
            p.params.clear();
            for (k, v) in params {
                if ![
                    "id",
                    "provisioning_code",
                    "auth_token",
                    "device_secret",
                    "signing_variant",
                    "provisioned_at",
                    "mac_address",
                    "room",
                    "room_type",
                    "type",
                    "gui_type",
                ]
                .contains(&k.as_str())
                {
                    p.set_param(&k, &v);
                }
            }
            for (k, v) in info {
                p.set_device_info(&k, &v);
            }
            p.credentials = creds.map(|(t, s, calaos)| latchkey_gateway::model::Credentials {
                auth_token: t,
                device_secret: s,
                variant: if calaos {
                    Variant::CalaosBase
                } else {
                    Variant::RemoteUiDesign
                },
                provisioned_at: Some(1_767_225_600),
            });
            for (attrs, widgets) in pages {
                let mut page = Page::default();
                for (k, v) in attrs {
                    if !page.attrs.iter().any(|(x, _)| *x == k) {
                        page.attrs.push((k, v));
                    }
                }
                for (t, x, y, io) in widgets {
                    let mut attrs = vec![
                        ("type".into(), t),
                        ("x".into(), x.to_string()),
                        ("y".into(), y.to_string()),
                    ];
                    if let Some(io) = io {
                        attrs.push(("io".into(), io));
                    }
                    page.widgets.push(Widget { attrs });
                }
                p.pages.push(page);
            }
            p
        })
}

proptest! {
    #[test]
    fn any_valid_panel_round_trips_through_both_layouts(p in arb_panel()) {
        let panels = vec![p];
        prop_assert_eq!(&import(&export(&panels, Layout::Design)).unwrap(), &panels);
        let mut room = panels.clone();
        room[0].set_param("room", "r");
        let mut back = import(&export(&room, Layout::Room)).unwrap();
        // The room layout adds the IO type parameters calaos_base requires.
        back[0].params.retain(|(k, _)| k != "type" && k != "gui_type");
        prop_assert_eq!(back, room);
    }

    #[test]
    fn page_and_widget_limits_accept_exactly_up_to_the_cap(pages in 0usize..60, widgets in 0usize..110) {
        let page = serde_json::json!({"id": "1", "widgets": (0..widgets).map(|i| serde_json::json!({"type": "b", "x": i, "y": 0})).collect::<Vec<_>>()});
        let v = serde_json::Value::Array(vec![page; pages]);
        let r = pages_from_json("p", &v);
        prop_assert_eq!(r.is_ok(), pages <= 50 && (pages == 0 || widgets <= 100));
    }

    #[test]
    fn strings_are_accepted_exactly_up_to_255_bytes(len in 200usize..300) {
        let mut p = RemoteUi::new("p", "n", "CODE");
        p.set_param("theme", &"t".repeat(len));
        prop_assert_eq!(p.validate().is_ok(), len <= 255);
    }

    #[test]
    fn import_never_panics_on_arbitrary_text(s in ".{0,400}") {
        let _ = import(&s);
    }
}

#[test]
fn import_refuses_names_the_export_could_not_write() {
    // A design-layout parameter whose name is not an attribute name.
    let xml = r#"<calaos:ioconfig xmlns:calaos="http://www.calaos.fr"><calaos:remote_uis><calaos:remote_ui id="a"><calaos:param name="a b" value="1"/></calaos:remote_ui></calaos:remote_uis></calaos:ioconfig>"#;
    let e = import(xml).unwrap_err().to_string();
    assert!(
        e.contains("a b") && e.contains("not a valid attribute name"),
        "{e}"
    );
    // A room-layout attribute XML allows but io.xml's names do not (non-ASCII).
    let xml = r#"<calaos:room name="R"><calaos:remote_ui id="x" données="1"/></calaos:room>"#;
    let e = import(xml).unwrap_err().to_string();
    assert!(e.contains("données"), "{e}");
}
