//! The operator's tasks on the table (`factors-admin`): programmes and their api keys, kept in
//! the registry partition (`schema::REGISTRY_PK`) so that no command scans the table. No
//! function calls these: they are not on the `Store` port, and no function's IAM policy allows
//! a write to a programme item (template test `no_function_can_write_a_programme_item`).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};

use super::{
    executor::{build_error, unavailable},
    schema::{self, Registration},
    DynamoStore, TTL_ATTRIBUTE,
};
use crate::{domain::programme::Programme, store::StoreError};

/// The snapshot's entries: api key hash → the programme's settings.
type Entries = std::collections::BTreeMap<String, String>;

/// One api key of a programme, as the registry lists it (defined with the items that encode
/// it).
pub use super::schema::ApiKeyRecord;

/// Why an operator task was refused.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("programme {0:?} exists already")]
    Exists(String),
    #[error("no programme {0:?}")]
    NoProgramme(String),
    #[error("programme {programme:?} has no api key {key_id:?}")]
    NoKey { programme: String, key_id: String },
    #[error("{0:?} is the programme's only api key: add another first, or disable the programme")]
    LastKey(String),
    #[error("a programme has at most {0} api keys")]
    TooManyKeys(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One transaction rewrites a programme's settings and every key's copy: DynamoDB's limit of
/// 100 items, less the settings item, bounds the keys a programme may hold.
pub const MAX_API_KEYS: usize = 20;

impl DynamoStore {
    /// Creates a programme with its first api key. Refused if the id exists.
    pub async fn create_programme(
        &self,
        programme: &Programme,
        key: &ApiKeyRecord,
    ) -> Result<(), OperatorError> {
        let writes = vec![
            schema::register_programme(programme, Registration::New)?,
            schema::register_api_key(&programme.id, key),
            schema::put_programme_for_key(&key.api_key_hash, &key.key_id, programme)?,
        ];
        let settings = schema::settings_json(programme)?;
        let change = |snapshot: &mut Entries| {
            snapshot.insert(key.api_key_hash.clone(), settings.clone());
        };
        match self
            .transact_with_snapshot("create_programme", writes, change)
            .await?
        {
            Ok(()) => Ok(()),
            Err(_) => Err(OperatorError::Exists(programme.id.clone())),
        }
    }

    /// Every programme's settings, from the registry.
    pub async fn registered_programmes(&self) -> Result<Vec<Programme>, StoreError> {
        self.query_registry(schema::REGISTRY_PROGRAMME)
            .await?
            .iter()
            .map(schema::programme_from_item)
            .collect()
    }

    /// One programme's settings.
    pub async fn registered_programme(&self, id: &str) -> Result<Option<Programme>, StoreError> {
        self.get(
            "registered_programme",
            &schema::registry_programme_key(id),
            true,
        )
        .await?
        .map(|item| schema::programme_from_item(&item))
        .transpose()
    }

    /// A programme's api keys (ids and hashes).
    pub async fn api_keys(&self, programme_id: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.query_registry(&schema::registry_api_keys_prefix(programme_id))
            .await?
            .iter()
            .map(schema::api_key_from_item)
            .collect()
    }

    /// Gives a programme another api key (rotation: add the new key, move clients to it,
    /// revoke the old one).
    pub async fn add_api_key(
        &self,
        programme_id: &str,
        key: &ApiKeyRecord,
    ) -> Result<(), OperatorError> {
        let programme = self
            .registered_programme(programme_id)
            .await?
            .ok_or_else(|| OperatorError::NoProgramme(programme_id.to_owned()))?;
        if self.api_keys(programme_id).await?.len() >= MAX_API_KEYS {
            return Err(OperatorError::TooManyKeys(MAX_API_KEYS));
        }
        let writes = vec![
            schema::programme_registered(programme_id),
            schema::register_api_key(programme_id, key),
            schema::put_programme_for_key(&key.api_key_hash, &key.key_id, &programme)?,
        ];
        let settings = schema::settings_json(&programme)?;
        let change = |snapshot: &mut Entries| {
            snapshot.insert(key.api_key_hash.clone(), settings.clone());
        };
        match self
            .transact_with_snapshot("add_api_key", writes, change)
            .await?
        {
            Ok(()) => Ok(()),
            Err(_) => Err(OperatorError::NoProgramme(programme_id.to_owned())),
        }
    }

    /// Revokes one api key: requests with it are refused once the functions' programme cache
    /// (`app::PROGRAMME_CACHE_SECS`) has let go of it. The last key is kept.
    pub async fn revoke_api_key(
        &self,
        programme_id: &str,
        key_id: &str,
    ) -> Result<(), OperatorError> {
        let keys = self.api_keys(programme_id).await?;
        let no_key = || OperatorError::NoKey {
            programme: programme_id.to_owned(),
            key_id: key_id.to_owned(),
        };
        let key = keys
            .iter()
            .find(|k| k.key_id == key_id)
            .ok_or_else(no_key)?;
        if keys.len() == 1 {
            return Err(OperatorError::LastKey(key_id.to_owned()));
        }
        let writes = vec![
            schema::unregister_api_key(programme_id, key_id),
            schema::delete_programme_key(&key.api_key_hash),
        ];
        let change = |snapshot: &mut Entries| {
            snapshot.remove(&key.api_key_hash);
        };
        match self
            .transact_with_snapshot("revoke_api_key", writes, change)
            .await?
        {
            Ok(()) => Ok(()),
            Err(_) => Err(no_key()),
        }
    }

    /// Replaces a programme's settings, and every api key's copy of them, in one transaction.
    pub async fn update_programme(&self, programme: &Programme) -> Result<(), OperatorError> {
        let keys = self.api_keys(&programme.id).await?;
        let mut writes = vec![schema::register_programme(
            programme,
            Registration::Existing,
        )?];
        for key in &keys {
            writes.push(schema::put_programme_for_key(
                &key.api_key_hash,
                &key.key_id,
                programme,
            )?);
        }
        let settings = schema::settings_json(programme)?;
        let change = |snapshot: &mut Entries| {
            for key in &keys {
                snapshot.insert(key.api_key_hash.clone(), settings.clone());
            }
        };
        match self
            .transact_with_snapshot("update_programme", writes, change)
            .await?
        {
            Ok(()) => Ok(()),
            Err(_) => Err(OperatorError::NoProgramme(programme.id.clone())),
        }
    }

    /// One-time upgrade for tables written before the registry existed: registers every
    /// programme found under an api key's item (the only scan an operator command makes, and
    /// only this once; registered programmes are left alone). Returns the programmes added.
    pub async fn register_legacy_programmes(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let mut by_id: HashMap<String, (Programme, Vec<String>)> = HashMap::new();
        for (hash, programme) in self.scan_programmes().await? {
            by_id
                .entry(programme.id.clone())
                .or_insert_with(|| (programme, Vec::new()))
                .1
                .push(hash);
        }
        let mut added = Vec::new();
        for (id, (programme, hashes)) in by_id {
            let mut writes = vec![schema::register_programme(&programme, Registration::New)?];
            for hash in &hashes {
                let key = ApiKeyRecord {
                    // The hash's first 8 characters: stable, and not the key.
                    key_id: format!("legacy-{}", hash.get(..8).unwrap_or(hash)),
                    api_key_hash: hash.clone(),
                    created_at: now,
                };
                writes.push(schema::register_api_key(&id, &key));
                writes.push(schema::put_programme_for_key(
                    hash,
                    &key.key_id,
                    &programme,
                )?);
            }
            let settings = schema::settings_json(&programme)?;
            let change = |snapshot: &mut Entries| {
                for hash in &hashes {
                    snapshot.insert(hash.clone(), settings.clone());
                }
            };
            if self
                .transact_with_snapshot("register_legacy_programme", writes, change)
                .await?
                .is_ok()
            {
                added.push(id);
            }
        }
        added.sort();
        Ok(added)
    }

    /// `writes` and the functions' snapshot with `change` applied, in one transaction (the
    /// snapshot's write last). A snapshot another operator changed meanwhile is read again
    /// and the transaction retried; the first change builds the snapshot from the registry.
    /// Refused writes of `writes` are answered as `transact` answers them.
    async fn transact_with_snapshot(
        &self,
        operation: &'static str,
        writes: Vec<schema::Write>,
        change: impl Fn(&mut Entries),
    ) -> Result<Result<(), Vec<usize>>, StoreError> {
        const ATTEMPTS: usize = 5;
        for _ in 0..ATTEMPTS {
            let (expected, mut entries) = match self.registry_snapshot().await? {
                Some(snapshot) => (Some(snapshot.version), snapshot.programmes),
                None => (None, self.registry_entries().await?),
            };
            change(&mut entries);
            let mut all = writes.clone();
            all.push(schema::put_snapshot(&entries, expected));
            let snapshot_at = all.len() - 1;
            match self.transact(operation, all).await? {
                Ok(()) => return Ok(Ok(())),
                Err(refused) if refused == [snapshot_at] => continue,
                Err(refused) => {
                    return Ok(Err(refused
                        .into_iter()
                        .filter(|&i| i != snapshot_at)
                        .collect()))
                }
            }
        }
        Err(StoreError::Unavailable {
            operation,
            source: format!("the registry snapshot changed under {ATTEMPTS} attempts in a row")
                .into(),
        })
    }

    /// Every registered api key's hash and its programme's settings: the snapshot, built from
    /// the registry (the first time one is written).
    async fn registry_entries(&self) -> Result<Entries, StoreError> {
        let mut entries = Entries::new();
        for programme in self.registered_programmes().await? {
            let settings = schema::settings_json(&programme)?;
            for key in self.api_keys(&programme.id).await? {
                entries.insert(key.api_key_hash, settings.clone());
            }
        }
        Ok(entries)
    }

    /// The functions' snapshot as it stands (none before the first operator change).
    pub async fn registry_snapshot(&self) -> Result<Option<schema::Snapshot>, StoreError> {
        self.get("read_snapshot", &schema::snapshot_key(), true)
            .await?
            .map(|item| schema::snapshot_from_item(&item))
            .transpose()
    }

    /// The registry items whose sort key starts with `prefix`.
    async fn query_registry(&self, prefix: &str) -> Result<Vec<schema::Item>, StoreError> {
        const OP: &str = "query_registry";
        let mut found = Vec::new();
        let mut start = None;
        let query = schema::registry_query(prefix);
        loop {
            let page = self.query(OP, &query, start).await?;
            found.extend(page.items().iter().cloned());
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(found);
            }
        }
    }
}

impl DynamoStore {
    /// Creates the table (on-demand, `pk`/`sk` strings, TTL on `ttl`) unless it exists.
    /// For local servers and the operator tool; production tables come from `template.yaml`.
    pub async fn create_table_if_missing(&self) -> Result<bool, StoreError> {
        const OP: &str = "create_table";
        if self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .is_ok()
        {
            return Ok(false);
        }
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| build_error(OP, e))
        };
        let key = |name: &str, kind: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kind)
                .build()
                .map_err(|e| build_error(OP, e))
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("pk")?)
            .attribute_definitions(attribute("sk")?)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .send()
            .await
            .map_err(|e| unavailable(OP, e))?;
        self.wait_until_active().await?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build()
                    .map_err(|e| build_error(OP, e))?,
            )
            .send()
            .await
            .map_err(|e| unavailable(OP, e))?;
        Ok(true)
    }

    /// Waits until a table just created is `ACTIVE` (DynamoDB takes seconds to minutes; every
    /// later command needs it), checking each second for at most 5 minutes.
    async fn wait_until_active(&self) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::TableStatus;
        const OP: &str = "create_table";
        for _ in 0..300 {
            let described = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| unavailable(OP, e))?;
            if described
                .table()
                .and_then(|t| t.table_status())
                .is_some_and(|s| *s == TableStatus::Active)
            {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        Err(StoreError::Corrupt {
            operation: OP,
            detail: "the table was not ACTIVE after 5 minutes".into(),
        })
    }

    /// Every programme in the table, with its api key hash: a scan, made only by the one-time
    /// `operator::register_legacy_programmes`.
    pub(super) async fn scan_programmes(&self) -> Result<Vec<(String, Programme)>, StoreError> {
        const OP: &str = "scan_programmes";
        let mut found = Vec::new();
        let mut start = None;
        loop {
            self.count();
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("#sk = :sk")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":sk", schema::s("PROGRAMME"))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable(OP, e))?;
            let snapshot = schema::snapshot_key().pk;
            for item in page.items() {
                let pk = schema::get_s(item, "pk", OP)?;
                // The functions' snapshot shares the key items' shape, not their content.
                if pk == snapshot {
                    continue;
                }
                let hash = pk.strip_prefix("PROGRAMME#").unwrap_or(&pk).to_owned();
                found.push((hash, schema::programme_from_item(item)?));
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(found);
            }
        }
    }
}
