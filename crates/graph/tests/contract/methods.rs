//! Authentication methods: list (every type), delete per type, add phone and email.

use latchkey_graph::{AuthMethod, GraphError, PhoneNumber, PhoneType};
use latchkey_types::EmailAddress;

use super::support::*;

#[tokio::test]
async fn list_maps_every_registered_type() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let methods = c.list_auth_methods(&oid(METHODS)).await.unwrap();
    let has = |pred: &dyn Fn(&AuthMethod) -> bool| methods.iter().any(pred);
    assert!(
        has(
            &|m| matches!(m, AuthMethod::Password(p) if p.id == latchkey_graph::PASSWORD_METHOD_ID)
        ),
        "{methods:#?}"
    );
    assert!(has(
        &|m| matches!(m, AuthMethod::Phone(p) if p.phone_type == Some(PhoneType::Mobile) && p.phone_number == "+1 2065550100")
    ));
    assert!(has(
        &|m| matches!(m, AuthMethod::Email(e) if e.email_address == "methods.home@example.org")
    ));
    assert!(has(
        &|m| matches!(m, AuthMethod::MicrosoftAuthenticator(a) if a.display_name.as_deref() == Some("Pixel 9"))
    ));
    assert!(has(
        &|m| matches!(m, AuthMethod::Fido2(k) if k.display_name.as_deref() == Some("Red key"))
    ));
    assert!(has(&|m| matches!(m, AuthMethod::SoftwareOath(_))));
    assert!(has(&|m| matches!(
        m,
        AuthMethod::WindowsHelloForBusiness(_)
    )));
    assert!(has(&|m| matches!(m, AuthMethod::PlatformCredential(_))));
    assert!(
        !has(&|m| matches!(m, AuthMethod::Unknown { .. })),
        "{methods:#?}"
    );
}

#[tokio::test]
async fn delete_each_deletable_method_by_its_type_segment() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let methods = c.list_auth_methods(&oid(METHODS)).await.unwrap();
    let before = sim.requests().len();
    let pw = methods
        .iter()
        .find(|m| matches!(m, AuthMethod::Password(_)))
        .unwrap();
    let e = c.delete_auth_method(&oid(METHODS), pw).await.unwrap_err();
    assert!(matches!(e, GraphError::MethodNotDeletable { .. }), "{e:?}");
    let unknown = AuthMethod::Unknown {
        odata_type: "#microsoft.graph.futureMethod".into(),
        id: Some("x".into()),
    };
    assert!(c.delete_auth_method(&oid(METHODS), &unknown).await.is_err());
    assert_eq!(
        sim.requests().len(),
        before,
        "no request for undeletable methods"
    );

    for m in methods.iter().filter(|m| m.delete_segment().is_some()) {
        c.delete_auth_method(&oid(METHODS), m)
            .await
            .unwrap_or_else(|e| panic!("{m:?}: {e}"));
        let seg = m.delete_segment().unwrap();
        let r = sim
            .requests()
            .into_iter()
            .rev()
            .find(|r| r.method == "DELETE")
            .unwrap();
        assert!(
            r.path
                .ends_with(&format!("/authentication/{seg}/{}", m.id().unwrap())),
            "{} for {m:?}",
            r.path
        );
        assert_eq!(r.status, 204);
    }
    let left = c.list_auth_methods(&oid(METHODS)).await.unwrap();
    assert_eq!(left.len(), 1, "only the password remains: {left:#?}");
}

#[tokio::test]
async fn add_phone_and_email_methods() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    let number: PhoneNumber = "+44 2071234567".parse().unwrap();
    let p = c
        .add_phone_method(&oid(TARGET), &number, PhoneType::Mobile)
        .await
        .unwrap();
    assert_eq!(p.phone_type, Some(PhoneType::Mobile));
    assert_eq!(p.id, latchkey_entra_sim::MOBILE_PHONE_ID);
    let r = requests_to(&sim, "/phoneMethods").pop().unwrap();
    assert_eq!(
        r.body,
        r#"{"phoneNumber":"+44 2071234567","phoneType":"mobile"}"#
    );
    // A second mobile phone is refused by Graph.
    let e = c
        .add_phone_method(&oid(TARGET), &number, PhoneType::Mobile)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e:?}");
    // Unknown type: refused locally.
    assert!(matches!(
        c.add_phone_method(&oid(TARGET), &number, PhoneType::UnknownFutureValue)
            .await,
        Err(GraphError::InvalidInput(_))
    ));
    let email: EmailAddress = "target.home@example.org".parse().unwrap();
    let m = c.add_email_method(&oid(TARGET), &email).await.unwrap();
    assert_eq!(m.email_address, "target.home@example.org");
    let methods = c.list_auth_methods(&oid(TARGET)).await.unwrap();
    assert!(methods.iter().any(|m| matches!(m, AuthMethod::Email(_))));
    assert!(methods.iter().any(|m| matches!(m, AuthMethod::Phone(_))));
}

#[tokio::test]
async fn the_method_behind_the_default_sign_in_method_cannot_be_deleted() {
    let (sim, f) = start().await;
    let c = app_client(&sim, &f);
    assert!(sim.tenant().set_default_method(METHODS, Some("sms")));
    let methods = c.list_auth_methods(&oid(METHODS)).await.unwrap();
    let phone = methods
        .iter()
        .find(|m| matches!(m, AuthMethod::Phone(_)))
        .unwrap();
    let e = c
        .delete_auth_method(&oid(METHODS), phone)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400), "{e:?}");
    // Nothing changed; other methods still go.
    let after = c.list_auth_methods(&oid(METHODS)).await.unwrap();
    assert!(after.iter().any(|m| matches!(m, AuthMethod::Phone(_))));
    let fido = after
        .iter()
        .find(|m| matches!(m, AuthMethod::Fido2(_)))
        .unwrap();
    c.delete_auth_method(&oid(METHODS), fido).await.unwrap();
    // `push`: the only authenticator app is what the default relies on.
    assert!(sim.tenant().set_default_method(METHODS, Some("push")));
    let app = after
        .iter()
        .find(|m| matches!(m, AuthMethod::MicrosoftAuthenticator(_)))
        .unwrap();
    let e = c.delete_auth_method(&oid(METHODS), app).await.unwrap_err();
    assert_eq!(e.status(), Some(400), "{e:?}");
    // Once the default no longer relies on it, the phone can go.
    c.delete_auth_method(&oid(METHODS), phone).await.unwrap();
}
