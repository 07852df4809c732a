//! The operator tool against the local DynamoDB-compatible server: a programme created with
//! it is usable by its printed key, disabling it is seen by the store, and the tokens it
//! mints verify.

use additional_factors::store::{FactorReads, Programmes, Seeding};
use std::process::Command;

use additional_factors::{
    auth::TokenVerifier,
    aws::sdk_config,
    domain::{channel::Channel, crypto::api_key_hash, factor::FactorStatus, phone::TokenPhone},
    store::{dynamodb::DynamoStore, UserKey},
};

fn admin(table: &str, args: &[&str]) -> (bool, String, String) {
    let endpoint = std::env::var("TEST_AWS_ENDPOINT")
        .expect("TEST_AWS_ENDPOINT is not set: run scripts/test, which starts a local DynamoDB/SNS-compatible server");
    let output = Command::new(env!("CARGO_BIN_EXE_factors-admin"))
        .args(args)
        .env("DYNAMODB_ENDPOINT", endpoint)
        .env("TABLE_NAME", table)
        .env("JWT_HS256_SECRET", "admin-test-secret-admin-test-secret")
        .env("JWT_ISSUER", "iss")
        .env("JWT_AUDIENCE", "aud")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn programmes_keys_tokens_and_biometric_factors() {
    let table = format!("admin-{}", std::process::id());
    assert_eq!(admin(&table, &["create-table"]).1.trim(), "table created");
    assert_eq!(
        admin(&table, &["create-table"]).1.trim(),
        "table already exists"
    );
    let (ok, out, _) = admin(
        &table,
        &[
            "create-programme",
            "--id",
            "acme",
            "--name",
            "Acme",
            "--sandbox",
        ],
    );
    assert!(ok);
    let key = out
        .lines()
        .find_map(|l| l.rsplit(": ").next().filter(|k| k.len() == 64))
        .unwrap()
        .to_owned();
    let (ok, _, err) = admin(
        &table,
        &["create-programme", "--id", "acme", "--inherit-countries"],
    );
    assert!(!ok && err.contains("exists already"), "{err}");
    // A live programme: the operator must choose where it may send SMS.
    let (ok, _, err) = admin(&table, &["create-programme", "--id", "dev"]);
    assert!(
        !ok && err.contains("--countries") && err.contains("--inherit-countries"),
        "{err}"
    );
    let (ok, out, _) = admin(
        &table,
        &[
            "create-programme",
            "--id",
            "dev",
            "--api-key",
            "a-chosen-development-key",
            "--countries",
            "44,+33",
        ],
    );
    assert!(ok && out.contains("a-chosen-development-key"));
    let dev = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(
            &sdk_config(Some(&std::env::var("TEST_AWS_ENDPOINT").unwrap())).await,
        ),
        &table,
    )
    .find_programme(&api_key_hash("a-chosen-development-key"))
    .await
    .unwrap()
    .unwrap();
    assert_eq!(dev.allowed_country_codes, ["44", "33"]);
    let (ok, out, _) = admin(
        &table,
        &["create-programme", "--id", "heir", "--inherit-countries"],
    );
    assert!(ok && out.contains("the deployment's default"), "{out}");
    let (ok, _, err) = admin(&table, &["create-programme"]);
    assert!(!ok && err.contains("--id is required"));

    let endpoint = std::env::var("TEST_AWS_ENDPOINT").unwrap();
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk_config(Some(&endpoint)).await),
        &table,
    );
    let programme = store
        .find_programme(&api_key_hash(&key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            programme.id.as_str(),
            programme.name.as_str(),
            programme.sandbox,
            programme.disabled
        ),
        ("acme", "Acme", true, false)
    );
    assert!(admin(&table, &["list-programmes"])
        .1
        .lines()
        .any(|l| l.starts_with("acme\t")));
    assert!(
        !admin(&table, &["list-programmes"]).1.contains(&key),
        "keys are never listed"
    );
    assert!(admin(&table, &["disable-programme", "--id", "acme", "--yes"]).0);
    assert!(
        store
            .find_programme(&api_key_hash(&key))
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    assert!(admin(&table, &["enable-programme", "--id", "acme"]).0);
    assert!(
        !store
            .find_programme(&api_key_hash(&key))
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
    assert!(!admin(&table, &["disable-programme", "--id", "nobody", "--yes"]).0);

    assert!(
        admin(
            &table,
            &["add-biometric", "--programme", "acme", "--user", "u1"]
        )
        .0
    );
    let user = UserKey {
        programme_id: "acme".into(),
        credential_id: "u1".into(),
    };
    let factor = store
        .get_factor(&user, Channel::Biometric)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(factor.status, FactorStatus::Active);

    let (ok, token, _) = admin(
        &table,
        &[
            "mint-token",
            "--programme",
            "acme",
            "--user",
            "u1",
            "--phone",
            "+447700900123",
            "--mfa",
        ],
    );
    assert!(ok);
    let verifier = TokenVerifier::new(
        Some(b"admin-test-secret-admin-test-secret"),
        None,
        "iss",
        "aud",
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let user = verifier
        .verify(Some(format!("Bearer {}", token.trim()).as_bytes()), now)
        .unwrap();
    assert_eq!(
        (
            user.credential_id.as_str(),
            user.programme_id.as_str(),
            user.mfa_at.is_some_and(|at| (now - at).abs() < 60)
        ),
        ("u1", "acme", true)
    );
    assert!(matches!(user.phone, TokenPhone::Valid(_)));
    assert!(!admin(&table, &["frobnicate"]).0);
}

/// The printed key id and api key.
fn printed_key(out: &str) -> (String, String) {
    let after = |prefix: &str| {
        let line = out.lines().find(|l| l.starts_with(prefix)).unwrap();
        line.rsplit(": ").next().unwrap().to_owned()
    };
    (after("key id "), after("api key "))
}

/// Rotation without downtime: a second api key, both working; settings changed for every
/// key at once; the old key revoked (refused), never the last one; listings show ids, never
/// keys or hashes. Programmes written before the registry are adopted once.
#[tokio::test]
async fn api_keys_rotate_and_settings_change_without_recreating_the_programme() {
    let table = format!("admin-keys-{}", std::process::id());
    assert!(admin(&table, &["create-table"]).0);
    let (ok, out, err) = admin(
        &table,
        &[
            "create-programme",
            "--id",
            "acme",
            "--name",
            "Acme",
            "--countries",
            "44",
        ],
    );
    assert!(ok, "{err}");
    let (first_id, first) = printed_key(&out);
    let (ok, out, err) = admin(&table, &["add-api-key", "--programme", "acme"]);
    assert!(ok, "{err}");
    let (second_id, second) = printed_key(&out);
    assert_ne!(first, second);
    assert_ne!(first_id, second_id);

    let endpoint = std::env::var("TEST_AWS_ENDPOINT").unwrap();
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&sdk_config(Some(&endpoint)).await),
        &table,
    );
    let by_key = |key: String| {
        let store = &store;
        async move { store.find_programme(&api_key_hash(&key)).await.unwrap() }
    };
    assert_eq!(by_key(first.clone()).await.unwrap().id, "acme");
    assert_eq!(by_key(second.clone()).await.unwrap().id, "acme");

    let listed = admin(&table, &["list-api-keys", "--programme", "acme"]).1;
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(listed.contains(&first_id) && listed.contains(&second_id));
    for secret in [
        &first,
        &second,
        &api_key_hash(&first),
        &api_key_hash(&second),
    ] {
        assert!(!listed.contains(secret.as_str()), "listed {secret}");
    }

    // One change reaches every key's copy; the id cannot change.
    let (ok, _, err) = admin(
        &table,
        &[
            "update-programme",
            "--id",
            "acme",
            "--name",
            "Acme Pay",
            "--countries",
            "44,33",
        ],
    );
    assert!(ok, "{err}");
    for key in [&first, &second] {
        let programme = by_key(key.clone()).await.unwrap();
        assert_eq!(programme.name, "Acme Pay");
        assert_eq!(programme.allowed_country_codes, ["44", "33"]);
    }
    let (ok, _, err) = admin(
        &table,
        &["update-programme", "--id", "nobody", "--name", "x"],
    );
    assert!(!ok && err.contains("no programme"), "{err}");

    // Revoking is destructive: without a terminal to confirm on, it needs --yes.
    let (ok, _, err) = admin(
        &table,
        &[
            "revoke-api-key",
            "--programme",
            "acme",
            "--key-id",
            &first_id,
        ],
    );
    assert!(!ok && err.contains("--yes"), "{err}");
    assert!(by_key(first.clone()).await.is_some(), "nothing changed");
    // Revoke the old key: refused from then on; the new one still works.
    let (ok, _, err) = admin(
        &table,
        &[
            "revoke-api-key",
            "--programme",
            "acme",
            "--key-id",
            &first_id,
            "--yes",
        ],
    );
    assert!(ok, "{err}");
    assert!(by_key(first.clone()).await.is_none());
    assert!(by_key(second.clone()).await.is_some());
    let (ok, _, err) = admin(
        &table,
        &[
            "revoke-api-key",
            "--programme",
            "acme",
            "--key-id",
            &first_id,
            "--yes",
        ],
    );
    assert!(!ok && err.contains("no api key"), "{err}");
    let (ok, _, err) = admin(
        &table,
        &[
            "revoke-api-key",
            "--programme",
            "acme",
            "--key-id",
            &second_id,
            "--yes",
        ],
    );
    assert!(!ok && err.contains("only api key"), "{err}");
    assert!(by_key(second.clone()).await.is_some());
    let (ok, _, err) = admin(&table, &["add-api-key", "--programme", "nobody"]);
    assert!(!ok && err.contains("no programme"), "{err}");

    // A programme written the old way (only its key's item) is invisible to the registry
    // until adopted, once.
    store
        .put_programme(
            &api_key_hash("a-legacy-key"),
            &additional_factors::domain::programme::Programme::new("old", true),
        )
        .await
        .unwrap();
    assert!(!admin(&table, &["list-programmes"]).1.contains("old\t"));
    let (ok, out, err) = admin(&table, &["register-legacy-programmes"]);
    assert!(ok && out.contains("registered: old"), "{out}{err}");
    assert_eq!(
        admin(&table, &["register-legacy-programmes"]).1.trim(),
        "registered: none"
    );
    let listed = admin(&table, &["list-programmes"]).1;
    assert!(listed.lines().any(|l| l.starts_with("old\t")), "{listed}");
    assert!(listed.lines().any(|l| l.starts_with("acme\t")), "{listed}");
    assert!(admin(&table, &["disable-programme", "--id", "old", "--yes"]).0);
    assert!(by_key("a-legacy-key".into()).await.unwrap().disabled);
}

/// The tool's exit code and stdout.
fn admin_code(table: &str, args: &[&str]) -> (i32, String, String) {
    let endpoint = std::env::var("TEST_AWS_ENDPOINT").expect("TEST_AWS_ENDPOINT is not set");
    let output = Command::new(env!("CARGO_BIN_EXE_factors-admin"))
        .args(args)
        .env("DYNAMODB_ENDPOINT", &endpoint)
        .env("SNS_ENDPOINT", &endpoint)
        .env("TABLE_NAME", table)
        .env("JWT_HS256_SECRET", "admin-test-secret-admin-test-secret")
        .env("JWT_ISSUER", "iss")
        .env("JWT_AUDIENCE", "aud")
        .env_remove("EVENTS_TOPIC_ARN")
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Help per command, misspelled flags refused with exit 2, JSON output, confirmation of
/// destructive commands, an audit trail of who did what, and one user's data exported and
/// erased.
#[tokio::test]
async fn an_operator_tool_people_trust() {
    let table = format!("admin-trust-{}", std::process::id());
    let (code, out, _) = admin_code(&table, &["--help"]);
    assert_eq!(code, 0);
    for command in [
        "create-programme",
        "revoke-api-key",
        "list-audit",
        "export-user",
        "erase-user",
    ] {
        assert!(out.contains(command), "{command} in {out}");
    }
    let (code, out, _) = admin_code(&table, &["create-programme", "--help"]);
    assert_eq!(code, 0);
    assert!(
        out.contains("--countries") && out.contains("--inherit-countries"),
        "{out}"
    );
    let (code, _, err) = admin_code(&table, &["create-programme", "--idd", "x"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--idd"), "{err}");
    assert_eq!(admin_code(&table, &["frobnicate"]).0, 2);

    let (code, out, err) = admin_code(&table, &["--json", "create-table"]);
    assert_eq!(code, 0, "{err}");
    let created: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(created["created"], true);
    let endpoint = std::env::var("TEST_AWS_ENDPOINT").unwrap();
    let sdk = sdk_config(Some(&endpoint)).await;
    let described = aws_sdk_dynamodb::Client::new(&sdk)
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.table().unwrap().table_status().unwrap().as_str(),
        "ACTIVE"
    );
    let (code, out, _) = admin_code(
        &table,
        &["--json", "create-programme", "--id", "trust", "--sandbox"],
    );
    assert_eq!(code, 0);
    let created: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(created["programme"], "trust");
    assert_eq!(created["apiKey"].as_str().unwrap().len(), 64);
    let listed: serde_json::Value =
        serde_json::from_str(admin_code(&table, &["--json", "list-programmes"]).1.trim()).unwrap();
    assert_eq!(listed["programmes"][0]["id"], "trust");

    // One user's data: exported (Art. 15), then erased (Art. 17), which needs confirming.
    assert_eq!(
        admin_code(
            &table,
            &["add-biometric", "--programme", "trust", "--user", "u9"]
        )
        .0,
        0
    );
    let (code, out, _) = admin_code(
        &table,
        &[
            "--json",
            "export-user",
            "--programme",
            "trust",
            "--user",
            "u9",
        ],
    );
    assert_eq!(code, 0);
    let exported: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let items = exported["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["sk"], "FACTOR#BIOMETRIC");
    assert_eq!(items[0]["status"], "ACTIVE");
    let (code, _, err) = admin_code(
        &table,
        &["erase-user", "--programme", "trust", "--user", "u9"],
    );
    assert_eq!(code, 1);
    assert!(err.contains("--yes"), "{err}");
    let (code, out, err) = admin_code(
        &table,
        &[
            "erase-user",
            "--programme",
            "trust",
            "--user",
            "u9",
            "--yes",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("removed 1 FACTOR item(s)"), "{out}");
    assert!(out.contains("no event published"), "{out}");
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), &table);
    let user = UserKey {
        programme_id: "trust".into(),
        credential_id: "u9".into(),
    };
    assert!(store.user_items(&user).await.unwrap().is_empty());

    // Who did what, newest first.
    let (code, out, _) = admin_code(&table, &["--json", "list-audit"]);
    assert_eq!(code, 0);
    let audit: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let actions: Vec<&str> = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "erase-user",
            "export-user",
            "add-biometric",
            "create-programme",
            "create-table"
        ]
    );
    let record = &audit["records"][0];
    assert_eq!(record["target"], "user u9 of trust");
    assert!(
        record["who"].as_str().unwrap().starts_with("arn:aws:"),
        "the caller's AWS identity: {record}"
    );
}

/// `factors-admin ... | head -1`: a closed pipe ends the output, not the tool (no panic).
#[test]
fn a_closed_pipe_is_no_panic() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = Command::new(env!("CARGO_BIN_EXE_factors-admin"))
        .args(["mint-token", "--programme", "p", "--user", "u"])
        .env("JWT_HS256_SECRET", "admin-test-secret-admin-test-secret")
        .env("JWT_ISSUER", "iss")
        .env("JWT_AUDIENCE", "aud")
        .stdout(writer)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}
