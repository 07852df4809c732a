//! The operator's tasks on the table (`factors-admin`): programmes and their api keys, kept in
//! the registry partition (`items::REGISTRY_PK`) so that no command scans the table. No
//! function calls these: they are not on the `Store` port, and no function's IAM policy allows
//! a write to a programme item (template test `no_function_can_write_a_programme_item`).

use std::collections::HashMap;

use super::{
    items::{self, Registration},
    unavailable, DynamoStore,
};
use crate::{domain::programme::Programme, store::StoreError};

/// One api key of a programme, as the registry lists it: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// A short random id the operator names the key by (to revoke it).
    pub key_id: String,
    pub api_key_hash: String,
    pub created_at: i64,
}

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
            items::register_programme(programme, Registration::New)?,
            items::register_api_key(&programme.id, key),
            items::put_programme_for_key(&key.api_key_hash, &key.key_id, programme)?,
        ];
        match self.transact("create_programme", writes).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(OperatorError::Exists(programme.id.clone())),
        }
    }

    /// Every programme's settings, from the registry.
    pub async fn registered_programmes(&self) -> Result<Vec<Programme>, StoreError> {
        self.query_registry(items::REGISTRY_PROGRAMME)
            .await?
            .iter()
            .map(items::programme_from_item)
            .collect()
    }

    /// One programme's settings.
    pub async fn registered_programme(&self, id: &str) -> Result<Option<Programme>, StoreError> {
        self.get(
            "registered_programme",
            &items::registry_programme_key(id),
            true,
        )
        .await?
        .map(|item| items::programme_from_item(&item))
        .transpose()
    }

    /// A programme's api keys (ids and hashes).
    pub async fn api_keys(&self, programme_id: &str) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.query_registry(&items::registry_api_keys_prefix(programme_id))
            .await?
            .iter()
            .map(items::api_key_from_item)
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
            items::programme_registered(programme_id),
            items::register_api_key(programme_id, key),
            items::put_programme_for_key(&key.api_key_hash, &key.key_id, &programme)?,
        ];
        match self.transact("add_api_key", writes).await? {
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
            items::unregister_api_key(programme_id, key_id),
            items::delete_programme_key(&key.api_key_hash),
        ];
        match self.transact("revoke_api_key", writes).await? {
            Ok(()) => Ok(()),
            Err(_) => Err(no_key()),
        }
    }

    /// Replaces a programme's settings, and every api key's copy of them, in one transaction.
    pub async fn update_programme(&self, programme: &Programme) -> Result<(), OperatorError> {
        let keys = self.api_keys(&programme.id).await?;
        let mut writes = vec![items::register_programme(
            programme,
            Registration::Existing,
        )?];
        for key in &keys {
            writes.push(items::put_programme_for_key(
                &key.api_key_hash,
                &key.key_id,
                programme,
            )?);
        }
        match self.transact("update_programme", writes).await? {
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
            let mut writes = vec![items::register_programme(&programme, Registration::New)?];
            for hash in &hashes {
                let key = ApiKeyRecord {
                    // The hash's first 8 characters: stable, and not the key.
                    key_id: format!("legacy-{}", hash.get(..8).unwrap_or(hash)),
                    api_key_hash: hash.clone(),
                    created_at: now,
                };
                writes.push(items::register_api_key(&id, &key));
                writes.push(items::put_programme_for_key(hash, &key.key_id, &programme)?);
            }
            if self
                .transact("register_legacy_programme", writes)
                .await?
                .is_ok()
            {
                added.push(id);
            }
        }
        added.sort();
        Ok(added)
    }

    /// The registry items whose sort key starts with `prefix`.
    async fn query_registry(&self, prefix: &str) -> Result<Vec<items::Item>, StoreError> {
        const OP: &str = "query_registry";
        let mut found = Vec::new();
        let mut start = None;
        loop {
            self.count();
            let query = items::registry_query(prefix);
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression(query.key_condition)
                .set_expression_attribute_names(Some(query.names))
                .set_expression_attribute_values(Some(query.values))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| unavailable(OP, e))?;
            found.extend(page.items().iter().cloned());
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(found);
            }
        }
    }
}
