//! The registry snapshot (issue 26): the operator keeps every api key's programme in one item,
//! in the same transaction as each change, and a function's init reads it with the request
//! that opens the table's connection, so its first request reads no programme.

use std::sync::Arc;

use additional_factors::{
    app::{App, ProgrammeCache},
    aws::sdk_config,
    domain::{crypto::api_key_hash, programme::Programme},
    store::{
        dynamodb::{operator::ApiKeyRecord, DynamoStore},
        Seeding,
    },
};

use crate::helpers::{aws_endpoint, patient, unique};

async fn table() -> DynamoStore {
    let config = patient(sdk_config(Some(&aws_endpoint())).await);
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        format!("snapshot-{}", unique()),
    );
    store.create_table_if_missing().await.unwrap();
    store
}

fn key(id: &str) -> (String, ApiKeyRecord) {
    let secret = format!("api-key-{id}-{}", unique());
    let record = ApiKeyRecord {
        key_id: id.into(),
        api_key_hash: api_key_hash(&secret),
        created_at: 1,
    };
    (secret, record)
}

/// The snapshot's programmes by api key hash: (programme id, disabled).
async fn entries(store: &DynamoStore) -> Vec<(String, String, bool)> {
    let snapshot = store.registry_snapshot().await.unwrap().unwrap();
    assert!(snapshot.complete);
    additional_factors::store::dynamodb::schema::snapshot_programmes(&snapshot)
        .unwrap()
        .into_iter()
        .map(|(hash, p)| (hash, p.id, p.disabled))
        .collect()
}

#[tokio::test]
async fn every_programme_and_key_change_keeps_the_snapshot_in_the_same_transaction() {
    let store = table().await;
    assert!(store.registry_snapshot().await.unwrap().is_none());
    let (_, first) = key("k1");
    let mut programme = Programme::new("p1", false);
    store.create_programme(&programme, &first).await.unwrap();
    assert_eq!(
        entries(&store).await,
        vec![(first.api_key_hash.clone(), "p1".into(), false)]
    );
    // Two operators adding keys at once: each change lands (the snapshot's version makes the
    // later one read it again), neither overwrites the other.
    let (_, second) = key("k2");
    let (_, third) = key("k3");
    let (a, b) = tokio::join!(
        store.add_api_key("p1", &second),
        store.add_api_key("p1", &third)
    );
    a.unwrap();
    b.unwrap();
    let mut expected = vec![
        (first.api_key_hash.clone(), "p1".to_owned(), false),
        (second.api_key_hash.clone(), "p1".to_owned(), false),
        (third.api_key_hash.clone(), "p1".to_owned(), false),
    ];
    expected.sort();
    assert_eq!(entries(&store).await, expected);
    // A disabled programme is disabled under every key; a revoked key is gone.
    programme.disabled = true;
    store.update_programme(&programme).await.unwrap();
    store.revoke_api_key("p1", "k2").await.unwrap();
    let mut expected = vec![
        (first.api_key_hash.clone(), "p1".to_owned(), true),
        (third.api_key_hash.clone(), "p1".to_owned(), true),
    ];
    expected.sort();
    assert_eq!(entries(&store).await, expected);
    // A refused change changes nothing there either.
    assert!(store
        .create_programme(&programme, &key("k4").1)
        .await
        .is_err());
    assert_eq!(entries(&store).await, expected);
}

#[tokio::test]
async fn a_table_older_than_the_snapshot_gets_one_at_its_first_change() {
    let store = table().await;
    // Written before the registry and the snapshot existed.
    let (_, old) = key("old");
    store
        .put_programme(&old.api_key_hash, &Programme::new("legacy", true))
        .await
        .unwrap();
    assert_eq!(
        store.register_legacy_programmes(1).await.unwrap(),
        ["legacy"]
    );
    let (_, new) = key("new");
    store
        .create_programme(&Programme::new("p2", false), &new)
        .await
        .unwrap();
    let mut expected = vec![
        (old.api_key_hash.clone(), "legacy".to_owned(), false),
        (new.api_key_hash.clone(), "p2".to_owned(), false),
    ];
    expected.sort();
    assert_eq!(entries(&store).await, expected);
    // The legacy scan passes over the snapshot (it has a key item's shape, not its content),
    // and a programme found later joins it.
    let (_, later) = key("later");
    store
        .put_programme(&later.api_key_hash, &Programme::new("later", true))
        .await
        .unwrap();
    assert_eq!(
        store.register_legacy_programmes(2).await.unwrap(),
        ["later"]
    );
    expected.push((later.api_key_hash.clone(), "later".to_owned(), false));
    expected.sort();
    assert_eq!(entries(&store).await, expected);
}

#[tokio::test]
async fn init_reads_the_programmes_and_the_first_request_reads_none() {
    let store = Arc::new(table().await);
    let (secret, record) = key("k1");
    store
        .create_programme(&Programme::new("p1", true), &record)
        .await
        .unwrap();
    let (unknown, _) = key("never-registered");
    let programmes = Arc::new(ProgrammeCache::default());
    let app = App::builder(store.clone())
        .programmes(programmes.clone())
        .otp_secret(b"0123456789abcdef0123456789abcdef")
        .build()
        .unwrap();
    let before = store.requests();
    let read = store.warm_up().await.unwrap();
    assert_eq!(store.requests(), before + 1, "one GetItem");
    assert_eq!(read.len(), 1);
    programmes.fill(read, 1_000);
    let found = app.programme_for_key(&secret, 1_000).await.unwrap();
    assert_eq!(found.map(|p| p.id.clone()), Some("p1".to_owned()));
    assert_eq!(
        store.requests(),
        before + 1,
        "the first request read no programme"
    );
    // Past the cache's time, or for a key the snapshot does not hold, the key's item is read
    // (a revocation takes effect as before; a key added after init works at once).
    let later = 1_000 + additional_factors::app::PROGRAMME_CACHE_SECS;
    assert!(app
        .programme_for_key(&secret, later)
        .await
        .unwrap()
        .is_some());
    assert_eq!(store.requests(), before + 2);
    assert!(app
        .programme_for_key(&unknown, later)
        .await
        .unwrap()
        .is_none());
    assert_eq!(store.requests(), before + 3);
}
