//! The single table: item keys, item ↔ record conversions, and every write the adapter makes,
//! built as plain values so one test can check each expression (moto accepts expressions that
//! DynamoDB rejects; see `../shared/TOOLING.md`).
//!
//! | item | `pk` | `sk` | attributes | TTL |
//! |---|---|---|---|---|
//! | programme (by api key) | `PROGRAMME#<sha256(api key)>` | `PROGRAMME` | `programme_id`, `programme` (JSON settings), `key_id` | — |
//! | registry: a programme | `PROGRAMMES` | `PROGRAMME#<id>` | `programme_id`, `programme` (the settings every key's item copies) | — |
//! | registry: an api key | `PROGRAMMES` | `APIKEY#<programme>#<key id>` | `key_id`, `api_key_hash`, `created_at` | — |
//! | factor | `USER#<programme>#<user>` | `FACTOR#<SMS\|AUTHY\|BIOMETRIC>` | `status`, `phone_hash`, `authy_id`, `pending_request`, `updated_at` | — |
//! | SMS challenge | `USER#<programme>#<user>` | `CHALLENGE#SMS` (enrolment) or `CHALLENGE#STEPUP#SMS#<session>` | `challenge_id`, `code_hash`, `phone_hash`, `attempts`, `wrong_code_limit`, `expires_at`, `created_at` | `ttl` |
//! | payment challenge | `USER#<programme>#<user>` | `PAYCHAL#<id>` | `reference`, `currency`, `value`, `payee_name`, `payee_account`, `channel`, `status`, `created_at`, `expires_at`, `request_id`, `proof`, `verified_by` | `ttl` (30 days) |
//! | payment reference | `USER#<programme>#<user>` | `PAYREF#<reference>` | `challenge_id` | `ttl` (30 days) |
//! | payment code | `USER#<programme>#<user>` | `CHALLENGE#PAY#<id>` | as an SMS challenge | `ttl` |
//! | step-up grant | `USER#<programme>#<user>` | `STEPUP#<session>` | `until`, `challenge_id`, `verified_by` | `ttl` |
//! | push step-up challenge | `USER#<programme>#<user>` | `PUSHCHAL#<id>` | `session`, `token_exp`, `status`, `expires_at`, `request_id` | `ttl` |
//! | idempotency record | `USER#<programme>#<user>` | `IDEMPOTENCY#<ref>` | `fingerprint`, `lease_id`, `response_status`, `response_body`, `expires_at` | `ttl` |
//! | send-limit counter | `RATE#<kind>#<scope>#<window secs>#<window index>` | `COUNTER` | `count` | `ttl` |
//! | push request index | `PUSHREQ#<request id>` | `PUSHREQ` | `programme_id`, `credential_id`, `challenge_id` (step-up) | `ttl` |
//! | callback nonce | `NONCE#<sha256(nonce, signature)>` | `NONCE` | `expires_at` | `ttl` |
//! | Authy user references | `AUTHYUSER#<authy id>` | `AUTHYUSER` | `refs` (string set of `<programme>#<user>`) | — |
//!
//! Every attribute name in an expression goes through `#names`, so no reserved word
//! (`status`, `count`, `ttl`, ...) is ever written bare.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::{
    domain::ids::{AttemptId, ChallengeId, LeaseId, PhoneHash},
    domain::{
        channel::Channel,
        factor::{FactorRecord, FactorStatus},
        idempotency::{IdempotencyRef, KEEP_SECS, LEASE_SECS},
        programme::Programme,
        send_limits::{CounterSubject, LimitCounter},
    },
    domain::{
        payment::{Payment, PaymentChallenge},
        step_up::{ChallengeStatus, PushChallenge, SessionId, RETRY_WAIT_SECS},
    },
    store::{
        ChallengeSlot, ClaimRecord, NewChallenge, PendingPush, PushPurpose, PushRequest,
        StepUpGrant, StoreError, StoredResponse, UserKey,
    },
};

pub type Item = HashMap<String, AttributeValue>;

/// TTL items outlive their logical expiry by this much: expiry is decided by the service
/// on every read, TTL only sweeps.
const TTL_GRACE_SECS: i64 = 24 * 3_600;

/// How long a push request stays resolvable by the provider's callback.
const PUSH_REQUEST_TTL_SECS: i64 = 7 * 24 * 3_600;

/// A primary key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub pk: String,
    pub sk: String,
}

impl Key {
    pub fn to_item(&self) -> Item {
        HashMap::from([
            ("pk".to_owned(), s(&self.pk)),
            ("sk".to_owned(), s(&self.sk)),
        ])
    }
}

pub fn programme_key(api_key_hash: &str) -> Key {
    Key {
        pk: format!("PROGRAMME#{api_key_hash}"),
        sk: "PROGRAMME".into(),
    }
}

pub fn factor_key(user: &UserKey, channel: Channel) -> Key {
    Key {
        pk: user_partition(user),
        sk: format!("FACTOR#{}", channel.as_str()),
    }
}

pub fn challenge_key(user: &UserKey, slot: &ChallengeSlot) -> Key {
    Key {
        pk: user_partition(user),
        sk: match slot {
            ChallengeSlot::Enrolment => "CHALLENGE#SMS".into(),
            ChallengeSlot::StepUp(session) => format!("CHALLENGE#STEPUP#SMS#{}", session.as_str()),
            ChallengeSlot::Payment(id) => format!("CHALLENGE#PAY#{id}"),
        },
    }
}

pub fn grant_key(user: &UserKey, session: &SessionId) -> Key {
    Key {
        pk: user_partition(user),
        sk: format!("STEPUP#{}", session.as_str()),
    }
}

pub fn push_challenge_key(user: &UserKey, id: &ChallengeId) -> Key {
    Key {
        pk: user_partition(user),
        sk: format!("PUSHCHAL#{id}"),
    }
}

pub fn idempotency_key(user: &UserKey, reference: &IdempotencyRef) -> Key {
    Key {
        pk: user_partition(user),
        sk: format!("IDEMPOTENCY#{}", reference.as_str()),
    }
}

/// The partition of everything a user owns. Programme ids hold no `#`, so the credential id
/// cannot forge another programme's partition.
pub fn user_partition(user: &UserKey) -> String {
    format!("USER#{}#{}", user.programme_id, user.credential_id)
}

/// A send-limit counter's partition: `RATE#` (`RATE#SANDBOX#` for sandbox sends), whose
/// sends, the shard where the limit is spread, the window's length and number.
pub fn counter_key(counter: &LimitCounter) -> Key {
    let id = &counter.id;
    let prefix = if id.sandbox { "RATE#SANDBOX#" } else { "RATE#" };
    let subject = match &id.subject {
        CounterSubject::UserSms {
            programme_id,
            credential_id,
        } => format!("SMS#USER#{programme_id}#{credential_id}"),
        CounterSubject::NumberSms { phone_hash } => format!("SMS#NUMBER#{phone_hash}"),
        CounterSubject::ProgrammeSms {
            programme_id,
            shard,
        } => format!("SMS#PROGRAMME#{programme_id}#{shard}"),
        CounterSubject::CountrySms {
            programme_id,
            country_code,
            shard,
        } => format!("SMS#COUNTRY#{programme_id}#{country_code}#{shard}"),
        CounterSubject::DeploymentSms { shard } => format!("SMS#DEPLOYMENT#{shard}"),
        CounterSubject::UserPush {
            programme_id,
            credential_id,
        } => format!("PUSH#USER#{programme_id}#{credential_id}"),
        CounterSubject::NumberPush { phone_hash } => format!("PUSH#NUMBER#{phone_hash}"),
    };
    Key {
        pk: format!("{prefix}{subject}#{}#{}", id.window_secs, id.window_index),
        sk: "COUNTER".into(),
    }
}

pub fn push_request_key(request_id: &str) -> Key {
    Key {
        pk: format!("PUSHREQ#{request_id}"),
        sk: "PUSHREQ".into(),
    }
}

pub fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_owned())
}

pub fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// What a write does besides its condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Put this whole item (keys included).
    Put(Item),
    /// Apply this update expression.
    Update(String),
    Delete,
    /// Only check the condition (in a transaction).
    Check,
}

/// One write: a key, what to do, an optional condition, and the placeholders both use.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    pub key: Key,
    pub action: Action,
    pub condition: Option<String>,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

impl Write {
    fn new(key: Key, action: Action) -> Self {
        Self {
            key,
            action,
            condition: None,
            names: HashMap::new(),
            values: HashMap::new(),
        }
    }

    /// Declares `#name` for each attribute name.
    fn names(mut self, names: &[&str]) -> Self {
        for name in names {
            self.names.insert(format!("#{name}"), (*name).to_owned());
        }
        self
    }

    fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    fn condition(mut self, condition: &str) -> Self {
        self.condition = Some(condition.to_owned());
        self
    }

    /// The expressions this write sends, for the expression checks.
    pub fn expressions(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self.condition.iter().map(String::as_str).collect();
        if let Action::Update(update) = &self.action {
            all.push(update);
        }
        all
    }
}

/// A query: key condition and its placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub key_condition: String,
    pub names: HashMap<String, String>,
    pub values: HashMap<String, AttributeValue>,
}

pub fn list_factors_query(user: &UserKey) -> Query {
    Query {
        key_condition: "#pk = :pk AND begins_with(#sk, :prefix)".into(),
        names: HashMap::from([("#pk".into(), "pk".into()), ("#sk".into(), "sk".into())]),
        values: HashMap::from([
            (":pk".into(), s(&user_partition(user))),
            (":prefix".into(), s("FACTOR#")),
        ]),
    }
}

// ---- programmes ----------------------------------------------------------------------------

pub fn put_programme(api_key_hash: &str, programme: &Programme) -> Result<Write, StoreError> {
    let mut item = programme_key(api_key_hash).to_item();
    item.insert("programme_id".into(), s(&programme.id));
    item.insert("programme".into(), s(&settings_json(programme)?));
    Ok(Write::new(programme_key(api_key_hash), Action::Put(item)))
}

pub fn programme_from_item(item: &Item) -> Result<Programme, StoreError> {
    let json = get_s(item, "programme", "find_programme")?;
    super::settings::parse(&json).map_err(|e| StoreError::Corrupt {
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

fn settings_json(programme: &Programme) -> Result<String, StoreError> {
    super::settings::to_json(programme).map_err(|e| StoreError::Corrupt {
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

/// The registry's record of one api key: its id and hash, never the key.
pub fn register_api_key(programme_id: &str, key: &super::operator::ApiKeyRecord) -> Write {
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

pub fn api_key_from_item(item: &Item) -> Result<super::operator::ApiKeyRecord, StoreError> {
    const OP: &str = "list_api_keys";
    Ok(super::operator::ApiKeyRecord {
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

// ---- factors -------------------------------------------------------------------------------

pub fn factor_to_item(user: &UserKey, factor: &FactorRecord) -> Item {
    let mut item = factor_key(user, factor.channel).to_item();
    item.insert("status".into(), s(factor.status.as_str()));
    item.insert("updated_at".into(), n(factor.updated_at));
    for (name, value) in [
        ("phone_hash", &factor.phone_hash),
        ("authy_id", &factor.authy_id),
        ("pending_request", &factor.pending_request),
        ("verified_by", &factor.verified_by),
    ] {
        if let Some(value) = value {
            item.insert(name.into(), s(value));
        }
    }
    item
}

pub fn factor_from_item(item: &Item) -> Result<FactorRecord, StoreError> {
    const OP: &str = "read factor";
    let sk = get_s(item, "sk", OP)?;
    let channel = sk
        .strip_prefix("FACTOR#")
        .and_then(|c| Channel::parse_among(c, &Channel::ALL))
        .ok_or_else(|| corrupt(OP, "sk"))?;
    let status =
        FactorStatus::parse(&get_s(item, "status", OP)?).ok_or_else(|| corrupt(OP, "status"))?;
    Ok(FactorRecord {
        channel,
        status,
        phone_hash: opt_s(item, "phone_hash"),
        authy_id: opt_s(item, "authy_id"),
        pending_request: opt_s(item, "pending_request"),
        verified_by: opt_s(item, "verified_by"),
        updated_at: get_n(item, "updated_at", OP)?,
    })
}

pub fn put_factor(user: &UserKey, factor: &FactorRecord) -> Write {
    Write::new(
        factor_key(user, factor.channel),
        Action::Put(factor_to_item(user, factor)),
    )
}

pub fn delete_factor(user: &UserKey, channel: Channel) -> Write {
    Write::new(factor_key(user, channel), Action::Delete)
}

// ---- SMS challenges ------------------------------------------------------------------------

/// Step one's factor write: pending, unless already ACTIVE for this phone.
pub fn mark_sms_pending(user: &UserKey, phone_hash: &PhoneHash, now: i64) -> Write {
    Write::new(
        factor_key(user, Channel::Sms),
        Action::Update("SET #status = :pending, #updated_at = :now".into()),
    )
    .names(&["status", "updated_at", "phone_hash"])
    .value(":pending", s(FactorStatus::PendingVerification.as_str()))
    .value(":active", s(FactorStatus::Active.as_str()))
    .value(":phone", s(phone_hash.as_str()))
    .value(":now", n(now))
    .condition("NOT (#status = :active AND #phone_hash = :phone)")
}

pub fn put_challenge(
    user: &UserKey,
    slot: &ChallengeSlot,
    challenge: &NewChallenge,
    now: i64,
) -> Write {
    let key = challenge_key(user, slot);
    let mut item = key.to_item();
    item.insert("created_at".into(), n(now));
    item.insert("challenge_id".into(), s(challenge.challenge_id.as_str()));
    item.insert("code_hash".into(), s(&challenge.code_hash));
    item.insert("phone_hash".into(), s(challenge.phone_hash.as_str()));
    item.insert("attempts".into(), n(0));
    item.insert(
        "wrong_code_limit".into(),
        n(i64::from(challenge.wrong_code_limit)),
    );
    item.insert("expires_at".into(), n(challenge.expires_at));
    item.insert("ttl".into(), n(challenge.expires_at + TTL_GRACE_SECS));
    Write::new(key, Action::Put(item))
}

/// A session's step-up challenge: stored only if its last one is at least 15 s old.
pub fn put_step_up_challenge(
    user: &UserKey,
    session: &SessionId,
    challenge: &NewChallenge,
    now: i64,
) -> Write {
    put_challenge(
        user,
        &ChallengeSlot::StepUp(session.clone()),
        challenge,
        now,
    )
    .names(&["pk", "created_at"])
    .value(":retry_before", n(now - RETRY_WAIT_SECS))
    .condition("attribute_not_exists(#pk) OR #created_at <= :retry_before")
}

/// The SMS factor is `ACTIVE` for this phone (a step-up's condition).
pub fn sms_active_for(user: &UserKey, phone_hash: &PhoneHash) -> Write {
    Write::new(factor_key(user, Channel::Sms), Action::Check)
        .names(&["status", "phone_hash"])
        .value(":active", s(FactorStatus::Active.as_str()))
        .value(":phone", s(phone_hash.as_str()))
        .condition("#status = :active AND #phone_hash = :phone")
}

/// The Authy factor is `ACTIVE` (a push step-up's settlement: unlinking voids it).
pub fn authy_active(user: &UserKey) -> Write {
    Write::new(factor_key(user, Channel::Authy), Action::Check)
        .names(&["status"])
        .value(":active", s(FactorStatus::Active.as_str()))
        .condition("#status = :active")
}

/// A step-up granted to a session.
pub fn put_grant(user: &UserKey, session: &SessionId, grant: &StepUpGrant) -> Write {
    let key = grant_key(user, session);
    let mut item = key.to_item();
    item.insert("until".into(), n(grant.until));
    item.insert("challenge_id".into(), s(grant.challenge_id.as_str()));
    item.insert("verified_by".into(), s(&grant.verified_by));
    item.insert("ttl".into(), n(grant.until + TTL_GRACE_SECS));
    Write::new(key, Action::Put(item))
}

pub fn grant_from_item(item: &Item) -> Result<StepUpGrant, StoreError> {
    const OP: &str = "read step-up grant";
    Ok(StepUpGrant {
        until: get_n(item, "until", OP)?,
        challenge_id: ChallengeId::new(get_s(item, "challenge_id", OP)?),
        verified_by: get_s(item, "verified_by", OP)?,
    })
}

pub fn put_push_challenge(user: &UserKey, challenge: &PushChallenge) -> Write {
    let key = push_challenge_key(user, &ChallengeId::from(challenge.id.as_str()));
    let mut item = key.to_item();
    item.insert("session".into(), s(challenge.session.as_str()));
    item.insert("token_exp".into(), n(challenge.token_exp));
    item.insert("lifetime".into(), n(i64::from(challenge.lifetime_secs)));
    item.insert("status".into(), s(challenge.status.as_str()));
    item.insert("expires_at".into(), n(challenge.expires_at));
    item.insert("request_id".into(), s(&challenge.request_id));
    item.insert("ttl".into(), n(challenge.expires_at + TTL_GRACE_SECS));
    Write::new(key, Action::Put(item))
}

pub fn push_challenge_from_item(item: &Item) -> Result<PushChallenge, StoreError> {
    const OP: &str = "read push challenge";
    let sk = get_s(item, "sk", OP)?;
    Ok(PushChallenge {
        id: ChallengeId::new(
            sk.strip_prefix("PUSHCHAL#")
                .ok_or_else(|| corrupt(OP, "sk"))?,
        ),
        session: SessionId::from_stored(get_s(item, "session", OP)?),
        token_exp: get_n(item, "token_exp", OP)?,
        lifetime_secs: u32::try_from(get_n(item, "lifetime", OP)?)
            .map_err(|_| corrupt(OP, "lifetime"))?,
        status: ChallengeStatus::parse(&get_s(item, "status", OP)?)
            .ok_or_else(|| corrupt(OP, "status"))?,
        expires_at: get_n(item, "expires_at", OP)?,
        request_id: get_s(item, "request_id", OP)?,
    })
}

/// How long a payment challenge (and its proof) stays readable.
const PAYMENT_TTL_SECS: i64 = 30 * 24 * 3_600;

pub fn payment_key(user: &UserKey, id: &ChallengeId) -> Key {
    Key {
        pk: user_partition(user),
        sk: format!("PAYCHAL#{id}"),
    }
}

pub fn payment_reference_key(user: &UserKey, reference: &str) -> Key {
    Key {
        pk: user_partition(user),
        sk: format!("PAYREF#{reference}"),
    }
}

pub fn put_payment(user: &UserKey, challenge: &PaymentChallenge) -> Write {
    let key = payment_key(user, &ChallengeId::from(challenge.id.as_str()));
    let mut item = key.to_item();
    let payment = &challenge.payment;
    item.insert("reference".into(), s(&payment.reference));
    item.insert("currency".into(), s(&payment.currency));
    item.insert("value".into(), AttributeValue::N(payment.value.to_string()));
    item.insert("payee_name".into(), s(&payment.payee_name));
    item.insert("payee_account".into(), s(&payment.payee_account));
    item.insert("channel".into(), s(challenge.channel.as_str()));
    item.insert("status".into(), s(challenge.status.as_str()));
    item.insert("created_at".into(), n(challenge.created_at));
    item.insert("expires_at".into(), n(challenge.expires_at));
    if let Some(request_id) = &challenge.request_id {
        item.insert("request_id".into(), s(request_id));
    }
    item.insert("ttl".into(), n(challenge.created_at + PAYMENT_TTL_SECS));
    Write::new(key, Action::Put(item))
}

pub fn payment_from_item(item: &Item) -> Result<PaymentChallenge, StoreError> {
    const OP: &str = "read payment challenge";
    let sk = get_s(item, "sk", OP)?;
    let value = match item.get("value") {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| corrupt(OP, "value"))?,
        _ => return Err(corrupt(OP, "value")),
    };
    Ok(PaymentChallenge {
        id: ChallengeId::new(
            sk.strip_prefix("PAYCHAL#")
                .ok_or_else(|| corrupt(OP, "sk"))?,
        ),
        payment: Payment {
            reference: get_s(item, "reference", OP)?,
            currency: get_s(item, "currency", OP)?,
            value,
            payee_name: get_s(item, "payee_name", OP)?,
            payee_account: get_s(item, "payee_account", OP)?,
        },
        channel: Channel::parse_among(&get_s(item, "channel", OP)?, &Channel::ALL)
            .ok_or_else(|| corrupt(OP, "channel"))?,
        status: ChallengeStatus::parse(&get_s(item, "status", OP)?)
            .ok_or_else(|| corrupt(OP, "status"))?,
        created_at: get_n(item, "created_at", OP)?,
        expires_at: get_n(item, "expires_at", OP)?,
        request_id: opt_s(item, "request_id"),
        proof: opt_s(item, "proof"),
        verified_by: opt_s(item, "verified_by"),
    })
}

/// Takes a payment reference: only if free, or still held by the challenge it replaces.
pub fn take_payment_reference(
    user: &UserKey,
    reference: &str,
    challenge_id: &ChallengeId,
    replaces: Option<&ChallengeId>,
    now: i64,
) -> Write {
    let key = payment_reference_key(user, reference);
    let mut item = key.to_item();
    item.insert("challenge_id".into(), s(challenge_id.as_str()));
    item.insert("ttl".into(), n(now + PAYMENT_TTL_SECS));
    let write = Write::new(key, Action::Put(item)).names(&["pk"]);
    match replaces {
        None => write.condition("attribute_not_exists(#pk)"),
        Some(previous) => write
            .names(&["challenge_id"])
            .value(":previous", s(previous.as_str()))
            .condition("attribute_not_exists(#pk) OR #challenge_id = :previous"),
    }
}

/// Releases a payment reference, if still held by this challenge.
pub fn release_payment_reference(
    user: &UserKey,
    reference: &str,
    challenge_id: &ChallengeId,
) -> Write {
    Write::new(payment_reference_key(user, reference), Action::Delete)
        .names(&["challenge_id"])
        .value(":challenge", s(challenge_id.as_str()))
        .condition("#challenge_id = :challenge")
}

pub fn delete_payment(user: &UserKey, id: &ChallengeId) -> Write {
    Write::new(payment_key(user, id), Action::Delete)
}

/// Ends a pending, unexpired payment challenge: verified (with its proof) or declined.
pub fn finish_payment(
    user: &UserKey,
    id: &ChallengeId,
    proof: Option<&crate::store::PaymentProof>,
    now: i64,
) -> Write {
    let write = Write::new(payment_key(user, id), Action::Check)
        .names(&["status", "expires_at"])
        .value(":pending", s(ChallengeStatus::Pending.as_str()))
        .value(":now", n(now))
        .condition("#status = :pending AND #expires_at > :now");
    let mut write = match proof {
        Some(proof) => write
            .names(&["proof", "verified_by"])
            .value(":status", s(ChallengeStatus::Verified.as_str()))
            .value(":proof", s(&proof.proof))
            .value(":by", s(&proof.verified_by)),
        None => write.value(":status", s(ChallengeStatus::Declined.as_str())),
    };
    write.action = Action::Update(match proof {
        Some(_) => "SET #status = :status, #proof = :proof, #verified_by = :by".into(),
        None => "SET #status = :status".into(),
    });
    write
}

/// Settles a pending, unexpired push challenge.
pub fn settle_push_challenge(
    user: &UserKey,
    id: &ChallengeId,
    status: ChallengeStatus,
    now: i64,
) -> Write {
    Write::new(
        push_challenge_key(user, id),
        Action::Update("SET #status = :status".into()),
    )
    .names(&["status", "expires_at"])
    .value(":status", s(status.as_str()))
    .value(":pending", s(ChallengeStatus::Pending.as_str()))
    .value(":now", n(now))
    .condition("#status = :pending AND #expires_at > :now")
}

/// Marks a pending push challenge expired.
pub fn expire_push_challenge(user: &UserKey, id: &ChallengeId) -> Write {
    Write::new(
        push_challenge_key(user, id),
        Action::Update("SET #status = :expired".into()),
    )
    .names(&["status"])
    .value(":expired", s(ChallengeStatus::Expired.as_str()))
    .value(":pending", s(ChallengeStatus::Pending.as_str()))
    .condition("#status = :pending")
}

/// Counts one attempt, only while the challenge is live and was sent to this phone.
///
/// `attempt_id` makes the increment idempotent: if the SDK resends the request after a lost
/// answer, or the caller retries the same idempotent request, the write finds its own id in
/// `attempt_ids` (every attempt counted on this challenge, so other attempts in between do
/// not hide it) and is refused instead of counting the same attempt twice (the caller then
/// reads the count from the returned item). `last_attempt` is still written and checked, for
/// challenges stored before `attempt_ids` existed.
pub fn count_attempt(
    user: &UserKey,
    slot: &ChallengeSlot,
    phone_hash: &PhoneHash,
    attempt_id: &AttemptId,
    now: i64,
) -> Write {
    Write::new(
        challenge_key(user, slot),
        Action::Update(
            "ADD #attempts :one, #attempt_ids :attempt_set SET #last_attempt = :attempt".into(),
        ),
    )
    .names(&[
        "pk",
        "attempts",
        "wrong_code_limit",
        "expires_at",
        "phone_hash",
        "last_attempt",
        "attempt_ids",
    ])
    .value(":one", n(1))
    .value(":phone", s(phone_hash.as_str()))
    .value(":now", n(now))
    .value(":attempt", s(attempt_id.as_str()))
    .value(
        ":attempt_set",
        AttributeValue::Ss(vec![attempt_id.as_str().to_owned()]),
    )
    .condition(
        "attribute_exists(#pk) AND #phone_hash = :phone AND #attempts < #wrong_code_limit \
         AND #expires_at > :now AND (attribute_not_exists(#last_attempt) OR #last_attempt <> :attempt) \
         AND NOT contains(#attempt_ids, :attempt)",
    )
}

/// Consumes the challenge if it is still this one.
pub fn delete_challenge(user: &UserKey, slot: &ChallengeSlot, challenge_id: &ChallengeId) -> Write {
    Write::new(challenge_key(user, slot), Action::Delete)
        .names(&["challenge_id"])
        .value(":challenge", s(challenge_id.as_str()))
        .condition("#challenge_id = :challenge")
}

pub fn activate_sms(
    user: &UserKey,
    phone_hash: &PhoneHash,
    attempt_id: &AttemptId,
    now: i64,
) -> Write {
    Write::new(
        factor_key(user, Channel::Sms),
        Action::Update(
            "SET #status = :active, #phone_hash = :phone, #verified_by = :attempt, #updated_at = :now"
                .into(),
        ),
    )
    .names(&["status", "phone_hash", "verified_by", "updated_at"])
    .value(":active", s(FactorStatus::Active.as_str()))
    .value(":phone", s(phone_hash.as_str()))
    .value(":attempt", s(attempt_id.as_str()))
    .value(":now", n(now))
}

pub fn challenge_from_item(item: &Item) -> Result<ChallengeItem, StoreError> {
    const OP: &str = "read challenge";
    let mut counted: Vec<AttemptId> = match item.get("attempt_ids") {
        Some(AttributeValue::Ss(ids)) => ids.iter().map(|id| AttemptId::new(id.clone())).collect(),
        _ => Vec::new(),
    };
    if let Some(last) = opt_s(item, "last_attempt") {
        counted.push(AttemptId::new(last));
    }
    Ok(ChallengeItem {
        counted,
        challenge_id: ChallengeId::new(get_s(item, "challenge_id", OP)?),
        code_hash: get_s(item, "code_hash", OP)?,
        phone_hash: PhoneHash::new(get_s(item, "phone_hash", OP)?),
        attempts: u32::try_from(get_n(item, "attempts", OP)?)
            .map_err(|_| corrupt(OP, "attempts"))?,
        wrong_code_limit: u32::try_from(get_n(item, "wrong_code_limit", OP)?)
            .map_err(|_| corrupt(OP, "wrong_code_limit"))?,
        expires_at: get_n(item, "expires_at", OP)?,
    })
}

/// A challenge as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeItem {
    /// The ids of the attempts counted on this challenge.
    pub counted: Vec<AttemptId>,
    pub challenge_id: ChallengeId,
    pub code_hash: String,
    pub phone_hash: PhoneHash,
    pub attempts: u32,
    pub wrong_code_limit: u32,
    pub expires_at: i64,
}

// ---- counters ------------------------------------------------------------------------------

/// Consumes one unit of a counter, only while it is under its limit.
pub fn consume_counter(counter: &LimitCounter) -> Write {
    Write::new(
        counter_key(counter),
        Action::Update("ADD #count :one SET #ttl = :ttl".into()),
    )
    .names(&["count", "ttl"])
    .value(":one", n(1))
    .value(":limit", n(i64::from(counter.limit)))
    .value(":ttl", n(counter.window_end + TTL_GRACE_SECS))
    .condition("(attribute_not_exists(#count) AND :one <= :limit) OR #count < :limit")
}

/// Gives one unit back (never below zero).
pub fn refund_counter(counter: &LimitCounter) -> Write {
    Write::new(
        counter_key(counter),
        Action::Update("ADD #count :minus_one".into()),
    )
    .names(&["count"])
    .value(":minus_one", n(-1))
    .value(":zero", n(0))
    .condition("#count > :zero")
}

// ---- push ----------------------------------------------------------------------------------

pub fn authy_not_active(user: &UserKey) -> Write {
    Write::new(factor_key(user, Channel::Authy), Action::Check)
        .names(&["pk", "status"])
        .value(":active", s(FactorStatus::Active.as_str()))
        .condition("attribute_not_exists(#pk) OR #status <> :active")
}

pub fn set_push_pending(user: &UserKey, pending: &PendingPush, now: i64) -> Write {
    let mut update = "SET #status = :pending, #phone_hash = :phone, #pending_request = :request, #updated_at = :now".to_owned();
    let mut write = Write::new(factor_key(user, Channel::Authy), Action::Check)
        .names(&[
            "pk",
            "status",
            "phone_hash",
            "pending_request",
            "updated_at",
            "authy_id",
        ])
        .value(":pending", s(FactorStatus::PendingVerification.as_str()))
        .value(":active", s(FactorStatus::Active.as_str()))
        .value(":phone", s(pending.phone_hash.as_str()))
        .value(":request", s(&pending.request_id))
        .value(":now", n(now))
        .condition("attribute_not_exists(#pk) OR #status <> :active");
    match &pending.authy_id {
        Some(authy_id) => {
            update.push_str(", #authy_id = :authy");
            write = write.value(":authy", s(authy_id));
        }
        None => update.push_str(" REMOVE #authy_id"),
    }
    write.action = Action::Update(update);
    write
}

pub fn put_push_request(
    request_id: &str,
    user: &UserKey,
    purpose: &PushPurpose,
    now: i64,
) -> Write {
    let mut item = push_request_key(request_id).to_item();
    item.insert("programme_id".into(), s(&user.programme_id));
    item.insert("credential_id".into(), s(&user.credential_id));
    match purpose {
        PushPurpose::Enrolment => {}
        PushPurpose::StepUp(challenge_id) => {
            item.insert("challenge_id".into(), s(challenge_id.as_str()));
        }
        PushPurpose::Payment(payment_id) => {
            item.insert("payment_id".into(), s(payment_id.as_str()));
        }
    }
    item.insert("ttl".into(), n(now + PUSH_REQUEST_TTL_SECS));
    Write::new(push_request_key(request_id), Action::Put(item))
}

pub fn authy_user_key(authy_id: &str) -> Key {
    Key {
        pk: format!("AUTHYUSER#{authy_id}"),
        sk: "AUTHYUSER".into(),
    }
}

/// The reference a factor holds on an Authy user (programme ids hold no `#`).
fn authy_reference(user: &UserKey) -> AttributeValue {
    AttributeValue::Ss(vec![format!(
        "{}#{}",
        user.programme_id, user.credential_id
    )])
}

/// Adds this user's factor to the Authy user's references (a set: adding twice is once).
pub fn reference_authy_user(authy_id: &str, user: &UserKey) -> Write {
    Write::new(
        authy_user_key(authy_id),
        Action::Update("ADD #refs :me".into()),
    )
    .names(&["refs"])
    .value(":me", authy_reference(user))
}

/// Removes this user's factor from the Authy user's references; refused when no reference
/// item exists (a factor enrolled before references were kept).
pub fn unreference_authy_user(authy_id: &str, user: &UserKey) -> Write {
    Write::new(
        authy_user_key(authy_id),
        Action::Update("DELETE #refs :me".into()),
    )
    .names(&["pk", "refs"])
    .value(":me", authy_reference(user))
    .condition("attribute_exists(#pk)")
}

/// How many factors still reference the Authy user, from the item after the update.
pub fn authy_references(item: &Item) -> usize {
    match item.get("refs") {
        Some(AttributeValue::Ss(refs)) => refs.len(),
        _ => 0,
    }
}

pub fn resolve_push(user: &UserKey, request_id: Option<&str>, approved: bool, now: i64) -> Write {
    let status = if approved {
        FactorStatus::Active
    } else {
        FactorStatus::Inactive
    };
    let write = Write::new(
        factor_key(user, Channel::Authy),
        Action::Update("SET #status = :status, #updated_at = :now REMOVE #pending_request".into()),
    )
    .names(&["status", "updated_at", "pending_request"])
    .value(":status", s(status.as_str()))
    .value(":pending", s(FactorStatus::PendingVerification.as_str()))
    .value(":now", n(now));
    match request_id {
        Some(id) => write
            .value(":request", s(id))
            .condition("#status = :pending AND #pending_request = :request"),
        None => write.condition("#status = :pending"),
    }
}

pub fn push_request_from_item(item: &Item) -> Result<PushRequest, StoreError> {
    Ok(PushRequest {
        user: UserKey {
            programme_id: get_s(item, "programme_id", "find_push_request")?,
            credential_id: get_s(item, "credential_id", "find_push_request")?,
        },
        purpose: match (opt_s(item, "challenge_id"), opt_s(item, "payment_id")) {
            (Some(id), _) => PushPurpose::StepUp(ChallengeId::new(id)),
            (None, Some(id)) => PushPurpose::Payment(ChallengeId::new(id)),
            (None, None) => PushPurpose::Enrolment,
        },
    })
}

/// Remembers a callback nonce: only if it is not remembered already.
pub fn claim_nonce(nonce_key: &str, expires_at: i64, now: i64) -> Write {
    let key = Key {
        pk: format!("NONCE#{nonce_key}"),
        sk: "NONCE".into(),
    };
    let item = key.to_item();
    claim(key, item, expires_at, now)
}

/// Puts `item` (held until `expires_at`, then removed by the TTL) only where no live item
/// holds its key: none, or one past its own `expires_at`.
fn claim(key: Key, mut item: Item, expires_at: i64, now: i64) -> Write {
    item.insert("expires_at".into(), n(expires_at));
    item.insert("ttl".into(), n(expires_at + TTL_GRACE_SECS));
    Write::new(key, Action::Put(item))
        .names(&["pk", "expires_at"])
        .value(":now", n(now))
        .condition("attribute_not_exists(#pk) OR #expires_at <= :now")
}

// ---- idempotency ---------------------------------------------------------------------------

/// Claims a reference: only if there is no live record under it.
pub fn claim_idempotency(
    user: &UserKey,
    reference: &IdempotencyRef,
    fingerprint: &str,
    lease_id: &LeaseId,
    now: i64,
) -> Write {
    let key = idempotency_key(user, reference);
    let mut item = key.to_item();
    item.insert("fingerprint".into(), s(fingerprint));
    item.insert("lease_id".into(), s(lease_id.as_str()));
    claim(key, item, now + LEASE_SECS, now)
}

/// A record written in the operation's own write (`ClaimRecord`): like a claim, only where no
/// live record holds the reference; final (kept `KEEP_SECS`) when it carries the answer.
pub fn idempotency_record(user: &UserKey, record: &ClaimRecord, now: i64) -> Write {
    let key = idempotency_key(user, &record.reference);
    let mut item = key.to_item();
    item.insert("fingerprint".into(), s(&record.fingerprint));
    item.insert("lease_id".into(), s(record.lease_id.as_str()));
    let held_until = match &record.response {
        Some(response) => {
            item.insert("response_status".into(), n(i64::from(response.status)));
            item.insert("response_body".into(), s(&response.body));
            now + KEEP_SECS
        }
        None => now + LEASE_SECS,
    };
    claim(key, item, held_until, now)
}

pub fn complete_idempotency(
    user: &UserKey,
    reference: &IdempotencyRef,
    lease_id: &LeaseId,
    response: &StoredResponse,
    now: i64,
) -> Write {
    Write::new(
        idempotency_key(user, reference),
        Action::Update(
            "SET #response_status = :status, #response_body = :body, #expires_at = :expires, #ttl = :ttl".into(),
        ),
    )
    .names(&["response_status", "response_body", "expires_at", "ttl", "lease_id"])
    .value(":status", n(i64::from(response.status)))
    .value(":body", s(&response.body))
    .value(":expires", n(now + KEEP_SECS))
    .value(":ttl", n(now + KEEP_SECS + TTL_GRACE_SECS))
    .value(":lease", s(lease_id.as_str()))
    .condition("#lease_id = :lease")
}

pub fn release_idempotency(
    user: &UserKey,
    reference: &IdempotencyRef,
    lease_id: &LeaseId,
) -> Write {
    Write::new(idempotency_key(user, reference), Action::Delete)
        .names(&["lease_id", "response_status"])
        .value(":lease", s(lease_id.as_str()))
        .condition("#lease_id = :lease AND attribute_not_exists(#response_status)")
}

/// An idempotency record as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyItem {
    pub fingerprint: String,
    pub lease_id: Option<String>,
    pub response: Option<StoredResponse>,
    pub expires_at: i64,
}

pub fn idempotency_from_item(item: &Item) -> Result<IdempotencyItem, StoreError> {
    const OP: &str = "read idempotency record";
    let response = match item.get("response_status") {
        Some(_) => Some(StoredResponse {
            status: u16::try_from(get_n(item, "response_status", OP)?)
                .map_err(|_| corrupt(OP, "response_status"))?,
            body: opt_s(item, "response_body").unwrap_or_default(),
        }),
        None => None,
    };
    Ok(IdempotencyItem {
        fingerprint: get_s(item, "fingerprint", OP)?,
        lease_id: opt_s(item, "lease_id"),
        response,
        expires_at: get_n(item, "expires_at", OP)?,
    })
}

// ---- attribute access ----------------------------------------------------------------------

fn corrupt(operation: &'static str, attribute: &str) -> StoreError {
    StoreError::Corrupt {
        operation,
        detail: format!("attribute {attribute} is missing or malformed"),
    }
}

pub fn get_s(item: &Item, name: &str, operation: &'static str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(corrupt(operation, name)),
    }
}

pub fn opt_s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

pub fn get_n(item: &Item, name: &str, operation: &'static str) -> Result<i64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value.parse().map_err(|_| corrupt(operation, name)),
        _ => Err(corrupt(operation, name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::send_limits::{
        push_counters, sms_counters, Destination, SendLimits, Sender, SmsBudget,
    };

    /// Counter keys are stored data: a deploy that changed them would reset every window.
    #[test]
    fn counter_keys_keep_their_stored_format() {
        let sender = Sender {
            programme_id: "p",
            credential_id: "u",
            sandbox: false,
        };
        let to = Destination {
            phone_hash: "h",
            country_code: "44",
        };
        let keys = |sender: &Sender| -> Vec<String> {
            sms_counters(
                &SendLimits::default(),
                &SmsBudget::default(),
                sender,
                &to,
                7_259,
                3,
            )
            .iter()
            .chain(&push_counters(&SendLimits::default(), sender, "h", 7_259))
            .map(|c| counter_key(c).pk)
            .collect()
        };
        assert_eq!(
            keys(&sender),
            [
                "RATE#SMS#USER#p#u#3600#2",
                "RATE#SMS#USER#p#u#86400#0",
                "RATE#SMS#NUMBER#h#86400#0",
                "RATE#SMS#PROGRAMME#p#3#86400#0",
                "RATE#SMS#COUNTRY#p#44#0#86400#0",
                "RATE#SMS#DEPLOYMENT#1#3600#2",
                "RATE#SMS#DEPLOYMENT#3#86400#0",
                "RATE#PUSH#USER#p#u#3600#2",
                "RATE#PUSH#NUMBER#h#86400#0",
            ]
        );
        let sandbox = Sender {
            sandbox: true,
            ..sender
        };
        assert!(keys(&sandbox)
            .iter()
            .all(|k| k.starts_with("RATE#SANDBOX#")));
    }

    fn user() -> UserKey {
        UserKey {
            programme_id: "p1".into(),
            credential_id: "user#1".into(),
        }
    }

    fn session() -> SessionId {
        SessionId::of_token(Some("s"), "t")
    }

    fn grant() -> StepUpGrant {
        StepUpGrant {
            until: 900,
            challenge_id: "c".into(),
            verified_by: "a".into(),
        }
    }

    fn push_challenge() -> PushChallenge {
        PushChallenge {
            id: "c".into(),
            session: session(),
            token_exp: 3_600,
            lifetime_secs: 900,
            status: ChallengeStatus::Pending,
            expires_at: 300,
            request_id: "r".into(),
        }
    }

    fn payment() -> PaymentChallenge {
        PaymentChallenge {
            id: "c".into(),
            payment: Payment {
                reference: "pay_1".into(),
                currency: "EUR".into(),
                value: 12_550,
                payee_name: "Acme Ltd".into(),
                payee_account: "GB29NWBK60161331926819".into(),
            },
            channel: Channel::Sms,
            status: ChallengeStatus::Pending,
            created_at: 10,
            expires_at: 310,
            request_id: None,
            proof: None,
            verified_by: None,
        }
    }

    #[test]
    fn payments_round_trip() {
        let Action::Put(item) = put_payment(&user(), &payment()).action else {
            panic!()
        };
        assert_eq!(payment_from_item(&item).unwrap(), payment());
    }

    fn reference() -> IdempotencyRef {
        IdempotencyRef::parse(b"ref-1").unwrap()
    }

    /// Every write the adapter can build, with both branches of the optional parts.
    fn every_write() -> Vec<(&'static str, Write)> {
        let u = user();
        let challenge = NewChallenge {
            challenge_id: "c".into(),
            code_hash: "h".into(),
            phone_hash: "p".into(),
            wrong_code_limit: 5,
            expires_at: 300,
        };
        let sender = Sender {
            programme_id: "p1",
            credential_id: "u",
            sandbox: false,
        };
        let to = Destination {
            phone_hash: "ph",
            country_code: "44",
        };
        let counter = sms_counters(
            &SendLimits::default(),
            &SmsBudget::default(),
            &sender,
            &to,
            0,
            0,
        )
        .remove(0);
        let push_counter = push_counters(&SendLimits::default(), &sender, "ph", 0).remove(0);
        let pending = |authy: Option<&str>| PendingPush {
            phone_hash: "p".into(),
            authy_id: authy.map(Into::into),
            request_id: "r".into(),
        };
        let factor = FactorRecord {
            channel: Channel::Biometric,
            status: FactorStatus::Active,
            phone_hash: None,
            authy_id: None,
            pending_request: None,
            verified_by: None,
            updated_at: 0,
        };
        let response = StoredResponse {
            status: 204,
            body: String::new(),
        };
        vec![
            (
                "put_programme",
                put_programme("hash", &Programme::new("p1", true)).unwrap(),
            ),
            (
                "register_programme",
                register_programme(&Programme::new("p1", true), Registration::New).unwrap(),
            ),
            (
                "register_programme (existing)",
                register_programme(&Programme::new("p1", true), Registration::Existing).unwrap(),
            ),
            ("programme_registered", programme_registered("p1")),
            (
                "register_api_key",
                register_api_key(
                    "p1",
                    &super::super::operator::ApiKeyRecord {
                        key_id: "k1".into(),
                        api_key_hash: "hash".into(),
                        created_at: 1,
                    },
                ),
            ),
            ("unregister_api_key", unregister_api_key("p1", "k1")),
            (
                "put_programme_for_key",
                put_programme_for_key("hash", "k1", &Programme::new("p1", true)).unwrap(),
            ),
            ("delete_programme_key", delete_programme_key("hash")),
            ("put_factor", put_factor(&u, &factor)),
            ("delete_factor", delete_factor(&u, Channel::Authy)),
            (
                "mark_sms_pending",
                mark_sms_pending(&u, &PhoneHash::from("p"), 0),
            ),
            (
                "put_challenge",
                put_challenge(&u, &ChallengeSlot::Enrolment, &challenge, 0),
            ),
            (
                "put_step_up_challenge",
                put_step_up_challenge(&u, &session(), &challenge, 100),
            ),
            ("sms_active_for", sms_active_for(&u, &PhoneHash::from("p"))),
            ("authy_active", authy_active(&u)),
            (
                "count_attempt",
                count_attempt(&u, &ChallengeSlot::Enrolment, &"p".into(), &"a".into(), 0),
            ),
            (
                "count_attempt (step-up)",
                count_attempt(
                    &u,
                    &ChallengeSlot::StepUp(session()),
                    &"p".into(),
                    &"a".into(),
                    0,
                ),
            ),
            (
                "delete_challenge",
                delete_challenge(&u, &ChallengeSlot::Enrolment, &ChallengeId::from("c")),
            ),
            ("put_grant", put_grant(&u, &session(), &grant())),
            (
                "put_push_challenge",
                put_push_challenge(&u, &push_challenge()),
            ),
            (
                "settle_push_challenge",
                settle_push_challenge(&u, &ChallengeId::from("c"), ChallengeStatus::Verified, 0),
            ),
            (
                "expire_push_challenge",
                expire_push_challenge(&u, &ChallengeId::from("c")),
            ),
            ("put_payment", put_payment(&u, &payment())),
            (
                "take_payment_reference (new)",
                take_payment_reference(&u, "r", &ChallengeId::from("c"), None, 0),
            ),
            (
                "take_payment_reference (replacing)",
                take_payment_reference(
                    &u,
                    "r",
                    &ChallengeId::from("c"),
                    Some(&ChallengeId::from("b")),
                    0,
                ),
            ),
            (
                "finish_payment (verified)",
                finish_payment(
                    &u,
                    &ChallengeId::from("c"),
                    Some(&crate::store::PaymentProof {
                        proof: "p".into(),
                        verified_by: "a".into(),
                    }),
                    0,
                ),
            ),
            (
                "finish_payment (declined)",
                finish_payment(&u, &ChallengeId::from("c"), None, 0),
            ),
            (
                "release_payment_reference",
                release_payment_reference(&u, "r", &ChallengeId::from("c")),
            ),
            (
                "delete_payment",
                delete_payment(&u, &ChallengeId::from("c")),
            ),
            (
                "activate_sms",
                activate_sms(&u, &"p".into(), &"a".into(), 0),
            ),
            ("consume_counter", consume_counter(&counter)),
            ("consume_push_counter", consume_counter(&push_counter)),
            ("refund_counter", refund_counter(&counter)),
            ("authy_not_active", authy_not_active(&u)),
            (
                "set_push_pending (authy id)",
                set_push_pending(&u, &pending(Some("a")), 0),
            ),
            (
                "set_push_pending (sandbox)",
                set_push_pending(&u, &pending(None), 0),
            ),
            (
                "put_push_request",
                put_push_request("r", &u, &PushPurpose::Enrolment, 0),
            ),
            ("reference_authy_user", reference_authy_user("a", &u)),
            ("unreference_authy_user", unreference_authy_user("a", &u)),
            ("claim_nonce", claim_nonce("n", 10, 0)),
            ("resolve_push (any)", resolve_push(&u, None, true, 0)),
            (
                "resolve_push (request)",
                resolve_push(&u, Some("r"), false, 0),
            ),
            (
                "claim_idempotency",
                claim_idempotency(&u, &reference(), "f", &LeaseId::from("l"), 0),
            ),
            (
                "complete_idempotency",
                complete_idempotency(&u, &reference(), &LeaseId::from("l"), &response, 0),
            ),
            (
                "release_idempotency",
                release_idempotency(&u, &reference(), &LeaseId::from("l")),
            ),
            (
                "idempotency_record (in progress)",
                idempotency_record(
                    &u,
                    &ClaimRecord {
                        reference: reference(),
                        fingerprint: "f".into(),
                        lease_id: LeaseId::from("l"),
                        response: None,
                    },
                    0,
                ),
            ),
            (
                "idempotency_record (final)",
                idempotency_record(
                    &u,
                    &ClaimRecord {
                        reference: reference(),
                        fingerprint: "f".into(),
                        lease_id: LeaseId::from("l"),
                        response: Some(response.clone()),
                    },
                    0,
                ),
            ),
        ]
    }

    /// Words an expression may hold besides placeholders: functions and keywords.
    const GRAMMAR: &[&str] = &[
        "SET",
        "ADD",
        "REMOVE",
        "DELETE",
        "AND",
        "OR",
        "NOT",
        "attribute_exists",
        "attribute_not_exists",
        "begins_with",
        "contains",
    ];

    /// Checks one set of expressions against its declared names and values.
    fn check(
        what: &str,
        expressions: &[&str],
        names: &HashMap<String, String>,
        values: &HashMap<String, AttributeValue>,
    ) {
        let mut used_names = std::collections::BTreeSet::new();
        let mut used_values = std::collections::BTreeSet::new();
        for expression in expressions {
            let tokens = expression
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '#' || c == ':'));
            for token in tokens.filter(|t| !t.is_empty()) {
                if token.starts_with('#') {
                    used_names.insert(token.to_owned());
                } else if token.starts_with(':') {
                    used_values.insert(token.to_owned());
                } else {
                    assert!(
                        GRAMMAR.contains(&token),
                        "{what}: bare word {token:?} (attribute names go through #names)"
                    );
                }
            }
        }
        let declared_names: std::collections::BTreeSet<_> = names.keys().cloned().collect();
        let declared_values: std::collections::BTreeSet<_> = values.keys().cloned().collect();
        assert_eq!(
            used_names, declared_names,
            "{what}: every declared name used, every used name declared"
        );
        assert_eq!(
            used_values, declared_values,
            "{what}: every declared value used, every used value declared"
        );
        for (placeholder, name) in names {
            assert_eq!(placeholder, &format!("#{name}"), "{what}");
        }
    }

    #[test]
    fn every_expression_declares_exactly_what_it_uses() {
        for (what, write) in every_write() {
            check(what, &write.expressions(), &write.names, &write.values);
            assert!(
                !write.key.pk.is_empty() && !write.key.sk.is_empty(),
                "{what}"
            );
            if let Action::Put(item) = &write.action {
                // Key attributes are strings, as the table declares them, and match the key.
                assert_eq!(item.get("pk"), Some(&s(&write.key.pk)), "{what}");
                assert_eq!(item.get("sk"), Some(&s(&write.key.sk)), "{what}");
                if let Some(ttl) = item.get("ttl") {
                    assert!(
                        matches!(ttl, AttributeValue::N(_)),
                        "{what}: ttl must be a number"
                    );
                }
            }
            if write.action == Action::Check {
                assert!(
                    write.condition.is_some(),
                    "{what}: a check needs a condition"
                );
            }
        }
        for (what, query) in [
            ("list_factors", list_factors_query(&user())),
            ("registry", registry_query(REGISTRY_PROGRAMME)),
        ] {
            check(what, &[&query.key_condition], &query.names, &query.values);
        }
    }

    #[test]
    fn factors_round_trip_through_items() {
        for factor in [
            FactorRecord {
                channel: Channel::Authy,
                status: FactorStatus::PendingVerification,
                phone_hash: Some("p".into()),
                authy_id: Some("a".into()),
                pending_request: Some("r".into()),
                verified_by: None,
                updated_at: 42,
            },
            FactorRecord {
                channel: Channel::Sms,
                status: FactorStatus::Active,
                phone_hash: None,
                authy_id: None,
                pending_request: None,
                verified_by: None,
                updated_at: 0,
            },
        ] {
            assert_eq!(
                factor_from_item(&factor_to_item(&user(), &factor)).unwrap(),
                factor
            );
        }
    }

    #[test]
    fn challenges_programmes_and_records_round_trip() {
        let challenge = NewChallenge {
            challenge_id: "c".into(),
            code_hash: "h".into(),
            phone_hash: "p".into(),
            wrong_code_limit: 7,
            expires_at: 300,
        };
        let Action::Put(item) =
            put_challenge(&user(), &ChallengeSlot::Enrolment, &challenge, 0).action
        else {
            panic!()
        };
        assert_eq!(
            challenge_from_item(&item).unwrap(),
            ChallengeItem {
                counted: Vec::new(),
                challenge_id: "c".into(),
                code_hash: "h".into(),
                phone_hash: "p".into(),
                attempts: 0,
                wrong_code_limit: 7,
                expires_at: 300
            }
        );
        let mut programme = Programme::new("p1", false);
        programme.allowed_country_codes = vec!["44".into()];
        let Action::Put(item) = put_programme("h", &programme).unwrap().action else {
            panic!()
        };
        assert_eq!(programme_from_item(&item).unwrap(), programme);
        let Action::Put(mut item) =
            claim_idempotency(&user(), &reference(), "f", &LeaseId::from("l"), 10).action
        else {
            panic!()
        };
        assert_eq!(idempotency_from_item(&item).unwrap().response, None);
        item.insert("response_status".into(), n(409));
        item.insert("response_body".into(), s("{}"));
        assert_eq!(
            idempotency_from_item(&item).unwrap().response,
            Some(StoredResponse {
                status: 409,
                body: "{}".into()
            })
        );
        for purpose in [PushPurpose::Enrolment, PushPurpose::StepUp("c".into())] {
            let Action::Put(item) = put_push_request("r", &user(), &purpose, 0).action else {
                panic!()
            };
            assert_eq!(
                push_request_from_item(&item).unwrap(),
                PushRequest {
                    user: user(),
                    purpose
                }
            );
        }
        let Action::Put(item) = put_grant(&user(), &session(), &grant()).action else {
            panic!()
        };
        assert_eq!(grant_from_item(&item).unwrap(), grant());
        let Action::Put(item) = put_push_challenge(&user(), &push_challenge()).action else {
            panic!()
        };
        assert_eq!(push_challenge_from_item(&item).unwrap(), push_challenge());
    }

    #[test]
    fn unreadable_items_are_corrupt_not_panics() {
        let mut item = factor_to_item(
            &user(),
            &FactorRecord {
                channel: Channel::Sms,
                status: FactorStatus::Active,
                phone_hash: None,
                authy_id: None,
                pending_request: None,
                verified_by: None,
                updated_at: 0,
            },
        );
        item.insert("status".into(), s("WEIRD"));
        assert!(matches!(
            factor_from_item(&item),
            Err(StoreError::Corrupt { .. })
        ));
        item.insert("updated_at".into(), s("not a number"));
        assert!(factor_from_item(&item).is_err());
        assert!(challenge_from_item(&HashMap::new()).is_err());
    }
}
