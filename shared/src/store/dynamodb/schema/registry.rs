//! The programmes' items (by api key hash) and the operator's registry of programmes and keys.

use super::*;

// ---- programmes ----------------------------------------------------------------------------

pub fn put_programme(api_key_hash: &str, programme: &Programme) -> Result<Write, StoreError> {
    let mut item = programme_key(api_key_hash).to_item();
    item.insert("programme_id".into(), s(&programme.id));
    item.insert("programme".into(), s(&settings_json(programme)?));
    Ok(Write::new(programme_key(api_key_hash), Action::Put(item)))
}

pub fn programme_from_item(item: &Item) -> Result<Programme, StoreError> {
    let json = get_s(item, "programme", "find_programme")?;
    super::super::settings::parse(&json).map_err(|e| StoreError::Corrupt {
        operation: "find_programme",
        detail: e.to_string(),
    })
}

// ---- the operator's registry ---------------------------------------------------------------
//
// One partition, read and written only by `factors-admin` (no function's IAM policy reaches
// it: functions read the `PROGRAMME#<hash>` item of an api key). It lists every programme's
// settings and its api keys (id, hash, creation time), so operator commands query it instead
// of scanning the table. Each key's `PROGRAMME#<hash>` item carries a copy of the settings,
// rewritten with the registry's in one transaction.

/// The registry's partition.
pub const REGISTRY_PK: &str = "PROGRAMMES";
/// Sort-key prefixes in the registry: a programme's settings, an api key.
pub const REGISTRY_PROGRAMME: &str = "PROGRAMME#";
pub const REGISTRY_API_KEY: &str = "APIKEY#";

pub fn registry_programme_key(programme_id: &str) -> Key {
    Key {
        pk: REGISTRY_PK.into(),
        sk: format!("{REGISTRY_PROGRAMME}{programme_id}"),
    }
}

pub fn registry_api_key_key(programme_id: &str, key_id: &str) -> Key {
    Key {
        pk: REGISTRY_PK.into(),
        sk: format!("{REGISTRY_API_KEY}{programme_id}#{key_id}"),
    }
}

/// The sort-key prefix of a programme's api keys (ids hold no `#`).
pub fn registry_api_keys_prefix(programme_id: &str) -> String {
    format!("{REGISTRY_API_KEY}{programme_id}#")
}

/// The registry items whose sort key starts with `prefix` (`REGISTRY_PROGRAMME`, or
/// `registry_api_keys_prefix`).
pub fn registry_query(prefix: &str) -> Query {
    Query {
        key_condition: "#pk = :pk AND begins_with(#sk, :prefix)".into(),
        names: HashMap::from([("#pk".into(), "pk".into()), ("#sk".into(), "sk".into())]),
        values: HashMap::from([
            (":pk".into(), s(REGISTRY_PK)),
            (":prefix".into(), s(prefix)),
        ]),
    }
}

pub fn settings_json(programme: &Programme) -> Result<String, StoreError> {
    super::super::settings::to_json(programme).map_err(|e| StoreError::Corrupt {
        operation: "put_programme",
        detail: e.to_string(),
    })
}

/// Whether a registry write creates the programme, or changes one that exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    New,
    Existing,
}

/// The registry's record of a programme's settings.
pub fn register_programme(
    programme: &Programme,
    registration: Registration,
) -> Result<Write, StoreError> {
    let key = registry_programme_key(&programme.id);
    let mut item = key.to_item();
    item.insert("programme_id".into(), s(&programme.id));
    item.insert("programme".into(), s(&settings_json(programme)?));
    Ok(Write::new(key, Action::Put(item))
        .names(&["pk"])
        .condition(match registration {
            Registration::New => "attribute_not_exists(#pk)",
            Registration::Existing => "attribute_exists(#pk)",
        }))
}

/// The programme is in the registry (a transaction's check).
pub fn programme_registered(programme_id: &str) -> Write {
    Write::new(registry_programme_key(programme_id), Action::Check)
        .names(&["pk"])
        .condition("attribute_exists(#pk)")
}

/// One api key of a programme, as the registry lists it: never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// A short random id the operator names the key by (to revoke it).
    pub key_id: String,
    pub api_key_hash: String,
    pub created_at: i64,
}

/// The registry's record of one api key: its id and hash, never the key.
pub fn register_api_key(programme_id: &str, key: &ApiKeyRecord) -> Write {
    let id = registry_api_key_key(programme_id, &key.key_id);
    let mut item = id.to_item();
    item.insert("programme_id".into(), s(programme_id));
    item.insert("key_id".into(), s(&key.key_id));
    item.insert("api_key_hash".into(), s(&key.api_key_hash));
    item.insert("created_at".into(), n(key.created_at));
    Write::new(id, Action::Put(item))
        .names(&["pk"])
        .condition("attribute_not_exists(#pk)")
}

pub fn unregister_api_key(programme_id: &str, key_id: &str) -> Write {
    Write::new(registry_api_key_key(programme_id, key_id), Action::Delete)
        .names(&["pk"])
        .condition("attribute_exists(#pk)")
}

pub fn api_key_from_item(item: &Item) -> Result<ApiKeyRecord, StoreError> {
    const OP: &str = "list_api_keys";
    Ok(ApiKeyRecord {
        key_id: get_s(item, "key_id", OP)?,
        api_key_hash: get_s(item, "api_key_hash", OP)?,
        created_at: get_n(item, "created_at", OP)?,
    })
}

/// An api key's item, read by every function: the programme's settings under the key's hash.
pub fn put_programme_for_key(
    api_key_hash: &str,
    key_id: &str,
    programme: &Programme,
) -> Result<Write, StoreError> {
    let mut write = put_programme(api_key_hash, programme)?;
    if let Action::Put(item) = &mut write.action {
        item.insert("key_id".into(), s(key_id));
    }
    Ok(write)
}

/// Revokes an api key: its item goes, and the key with it.
pub fn delete_programme_key(api_key_hash: &str) -> Write {
    Write::new(programme_key(api_key_hash), Action::Delete)
}

// ---- the functions' snapshot of the registry -------------------------------------------------
//
// Every api key's programme in one item, kept by the operator in the same transaction as each
// programme or key change. A function reads it at init: one `GetItem` whose answer seeds its
// programme cache (so the first request reads no programme) and whose round trip opens the
// table's connection. It sits under `PROGRAMME#` (a hash is lowercase hex, `SNAPSHOT` is not
// one), where functions may read and no function may write.

/// The snapshot's item.
pub fn snapshot_key() -> Key {
    Key {
        pk: "PROGRAMME#SNAPSHOT".into(),
        sk: "PROGRAMME".into(),
    }
}

/// The most a snapshot holds of DynamoDB's 400 KB item: keys past it are left out, and a
/// function reads theirs one by one, as it reads a key added after its init.
pub const SNAPSHOT_MAX_BYTES: usize = 350_000;

/// The snapshot: each api key's hash and its programme's settings (as the key's item holds
/// them), and the version the next change is conditioned on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub version: i64,
    pub programmes: std::collections::BTreeMap<String, String>,
    /// False when keys were left out to keep the item under `SNAPSHOT_MAX_BYTES`.
    pub complete: bool,
}

pub fn snapshot_from_item(item: &Item) -> Result<Snapshot, StoreError> {
    const OP: &str = "read_snapshot";
    let corrupt = |detail: &str| StoreError::Corrupt {
        operation: OP,
        detail: detail.to_owned(),
    };
    let programmes = match item.get("programmes") {
        Some(AttributeValue::M(map)) => map
            .iter()
            .map(|(hash, settings)| match settings {
                AttributeValue::S(settings) => Ok((hash.clone(), settings.clone())),
                _ => Err(corrupt("a snapshot entry is not a string")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(corrupt("the snapshot has no programmes map")),
    };
    Ok(Snapshot {
        version: get_n(item, "version", OP)?,
        programmes,
        complete: matches!(item.get("complete"), Some(AttributeValue::Bool(true))),
    })
}

/// The programmes of a snapshot, parsed (each as `programme_from_item` reads a key's item).
pub fn snapshot_programmes(snapshot: &Snapshot) -> Result<Vec<(String, Programme)>, StoreError> {
    snapshot
        .programmes
        .iter()
        .map(|(hash, settings)| {
            super::super::settings::parse(settings)
                .map(|programme| (hash.clone(), programme))
                .map_err(|e| StoreError::Corrupt {
                    operation: "read_snapshot",
                    detail: e.to_string(),
                })
        })
        .collect()
}

/// Writes `programmes` as the next version of the snapshot, if it is still at `expected`
/// (`None`: there is none yet). Entries past `SNAPSHOT_MAX_BYTES` are left out (in key
/// order), and the snapshot says it is not complete.
pub fn put_snapshot(
    programmes: &std::collections::BTreeMap<String, String>,
    expected: Option<i64>,
) -> Write {
    let key = snapshot_key();
    let mut kept = HashMap::new();
    let mut size = 100;
    let mut complete = true;
    for (hash, settings) in programmes {
        let entry = hash.len() + settings.len() + 8;
        if size + entry > SNAPSHOT_MAX_BYTES {
            complete = false;
            continue;
        }
        size += entry;
        kept.insert(hash.clone(), s(settings));
    }
    let mut item = key.to_item();
    item.insert("programmes".into(), AttributeValue::M(kept));
    item.insert("version".into(), n(expected.unwrap_or(0) + 1));
    item.insert("complete".into(), AttributeValue::Bool(complete));
    let write = Write::new(key, Action::Put(item));
    match expected {
        None => write.names(&["pk"]).condition("attribute_not_exists(#pk)"),
        Some(version) => write
            .names(&["version"])
            .condition("#version = :version")
            .value(":version", n(version)),
    }
}
