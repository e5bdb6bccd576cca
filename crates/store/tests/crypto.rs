use latchkey_store::prelude::*;
use latchkey_store::{
    Cipher, EncryptionKey, EnrollmentState, KeyError, NewEnrollment, SqliteOptions, SqliteStore,
    StoreError, aad,
};
use latchkey_types::{ObjectId, Secret};

use crate::support::{TempDir, t0, user};

#[test]
fn seal_and_open_round_trip_and_tampering_is_detected() {
    let cipher = Cipher::new(&EncryptionKey::generate().unwrap());
    let who = ObjectId::new_random();
    let ad = aad("enrollments", &who, "totp");
    let blob = cipher.seal(b"JBSWY3DPEHPK3PXP", &ad, "test").unwrap();
    assert!(
        !blob.windows(16).any(|w| w == b"JBSWY3DPEHPK3PXP"),
        "plaintext not visible"
    );
    assert_eq!(
        cipher.open(&blob, &ad, "test").unwrap().expose(),
        b"JBSWY3DPEHPK3PXP"
    );

    // Fresh nonce every time.
    assert_ne!(blob, cipher.seal(b"JBSWY3DPEHPK3PXP", &ad, "test").unwrap());

    for i in [0, 1, 30, blob.len() - 1] {
        let mut bad = blob.clone();
        bad[i] ^= 1;
        assert!(
            cipher.open(&bad, &ad, "test").is_err(),
            "flipped byte {i} accepted"
        );
    }
    assert!(cipher.open(&blob[..20], &ad, "test").is_err());
    // Another user, another method, another table: all refused.
    for other in [
        aad("enrollments", &ObjectId::new_random(), "totp"),
        aad("enrollments", &who, "sms"),
        aad("other", &who, "totp"),
    ] {
        assert!(cipher.open(&blob, &other, "test").is_err());
    }
    // Another key.
    let other = Cipher::new(&EncryptionKey::generate().unwrap());
    assert!(other.open(&blob, &ad, "test").is_err());
    assert_eq!(format!("{cipher:?}"), "Cipher([redacted])");
}

#[tokio::test]
async fn a_secret_moved_to_another_users_row_does_not_decrypt() {
    let dir = TempDir::new("aad-swap");
    let path = dir.path().join("db.sqlite");
    let store = SqliteStore::open(
        &SqliteOptions::file(&path),
        Cipher::new(&EncryptionKey::generate().unwrap()),
    )
    .await
    .unwrap();
    let (victim, attacker) = (user(), user());
    for (who, seed) in [
        (victim, b"victim-seed-xxxxxxxx"),
        (attacker, b"attacker-seed-xxxxxx"),
    ] {
        store
            .stage_enrollment(
                NewEnrollment {
                    subject: who,
                    method: "totp".into(),
                    data: serde_json::json!({}),
                    secret: Some(Secret::new(seed.to_vec())),
                },
                t0(),
            )
            .await
            .unwrap();
        store.activate_enrollment(&who, "totp", t0()).await.unwrap();
    }

    // Someone with write access to the database copies the victim's seed into their own row.
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute(
        "UPDATE enrollments SET secret = (SELECT secret FROM enrollments WHERE subject = ?1) \
         WHERE subject = ?2",
        [victim.to_string(), attacker.to_string()],
    )
    .unwrap();
    // ... or renames the victim's TOTP row into an SMS row.
    raw.execute(
        "UPDATE enrollments SET method = 'sms' WHERE subject = ?1",
        [victim.to_string()],
    )
    .unwrap();
    drop(raw);

    let err = store
        .enrollment(&attacker, "totp", EnrollmentState::Active)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Decrypt { .. }), "{err}");
    let err = store
        .enrollment(&victim, "sms", EnrollmentState::Active)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Decrypt { .. }), "{err}");
}

#[cfg(unix)]
#[test]
fn the_key_file_is_created_0600_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("keyfile");
    let path = dir.path().join("at-rest.key");
    let k1 = EncryptionKey::load_or_create(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.trim().len(), 44, "base64 of 32 bytes");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no temp file left behind"
    );

    // The same key comes back: what one sealed, the other opens.
    let k2 = EncryptionKey::load_or_create(&path).unwrap();
    let ad = b"ad";
    let blob = Cipher::new(&k1).seal(b"x", ad, "t").unwrap();
    assert_eq!(
        Cipher::new(&k2).open(&blob, ad, "t").unwrap().expose(),
        b"x"
    );
    assert_eq!(format!("{k1:?}"), "EncryptionKey([redacted])");

    // A key file others can read is refused, with the fix in the message and no key material.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = EncryptionKey::load_or_create(&path).unwrap_err();
    assert!(matches!(err, KeyError::Permissions { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("chmod 600") && !msg.contains(text.trim()),
        "{msg}"
    );
}

#[test]
fn keys_from_text_and_environment_are_validated_without_echoing_them() {
    let good = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
    EncryptionKey::from_base64(&Secret::new(format!("{good}\n")), "test").unwrap();
    for bad in ["", "not base64!", "q83vEjRWeJCrze8SNFZ4kA=="] {
        let err = EncryptionKey::from_base64(&Secret::new(bad.to_string()), "test").unwrap_err();
        assert!(matches!(err, KeyError::Format { .. }));
        assert!(bad.is_empty() || !err.to_string().contains(bad));
    }
    let err = EncryptionKey::from_env("LATCHKEY_TEST_SURELY_UNSET_KEY_VAR").unwrap_err();
    assert!(matches!(err, KeyError::EnvMissing(_)));
}

#[tokio::test]
async fn a_database_opened_with_another_key_fails_closed() {
    let dir = TempDir::new("wrong-key");
    let path = dir.path().join("db.sqlite");
    let who = user();
    {
        let store = SqliteStore::open(
            &SqliteOptions::file(&path),
            Cipher::new(&EncryptionKey::generate().unwrap()),
        )
        .await
        .unwrap();
        store
            .stage_enrollment(
                NewEnrollment {
                    subject: who,
                    method: "totp".into(),
                    data: serde_json::json!({}),
                    secret: Some(Secret::new(vec![9; 20])),
                },
                t0(),
            )
            .await
            .unwrap();
        store.close().await;
    }
    let store = SqliteStore::open(
        &SqliteOptions::file(&path),
        Cipher::new(&EncryptionKey::generate().unwrap()),
    )
    .await
    .unwrap();
    assert!(store.enrollments(&who).await.is_err());
}
