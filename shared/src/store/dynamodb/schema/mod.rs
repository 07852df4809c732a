//! The single table: item keys, item ↔ record conversions, and every write the adapter makes,
//! built as plain values so one test can check each expression (moto accepts expressions that
//! DynamoDB rejects: an unused `ExpressionAttributeValues`, a key of the wrong type).
//!
//! | item | `pk` | `sk` | attributes | TTL |
//! |---|---|---|---|---|
//! | programme (by api key) | `PROGRAMME#<sha256(api key)>` | `PROGRAMME` | `programme_id`, `programme` (JSON settings), `key_id` | — |
//! | registry: a programme | `PROGRAMMES` | `PROGRAMME#<id>` | `programme_id`, `programme` (the settings every key's item copies) | — |
//! | registry: an api key | `PROGRAMMES` | `APIKEY#<programme>#<key id>` | `key_id`, `api_key_hash`, `created_at` | — |
//! | factor | `USER#<programme>#<user>` | `FACTOR#<SMS\|AUTHY\|BIOMETRIC>` | `status`, `phone_hash`, `provider_ref` (`authy_id` in items written before it), `pending_request`, `updated_at`, a BIOMETRIC factor's `device_*` | — |
//! | SMS challenge | `USER#<programme>#<user>` | `CHALLENGE#SMS` (enrolment) or `CHALLENGE#STEPUP#SMS#<session>` | `challenge_id`, `code_hash`, `phone_hash`, `attempts`, `wrong_code_limit`, `expires_at`, `created_at` | `ttl` |
//! | payment challenge | `USER#<programme>#<user>` | `PAYCHAL#<id>` | `reference`, `currency`, `value`, `payee_name`, `payee_account`, `channel`, `status`, `created_at`, `expires_at`, `request_id`, `proof`, `verified_by` | `ttl` (30 days) |
//! | payment reference | `USER#<programme>#<user>` | `PAYREF#<reference>` | `challenge_id` | `ttl` (30 days) |
//! | payment code | `USER#<programme>#<user>` | `CHALLENGE#PAY#<id>` | as an SMS challenge | `ttl` |
//! | BIOMETRIC enrolment | `USER#<programme>#<user>` | `CHALLENGE#DEVICE` | as an SMS challenge: `code_hash` the signing input, `phone_hash` the key's thumbprint | `ttl` |
//! | BIOMETRIC answer (a step-up's or payment's, until settled) | `USER#<programme>#<user>` | `CHALLENGE#DEVICE#<challenge id>` | as the enrolment's | `ttl` |
//! | step-up grant | `USER#<programme>#<user>` | `STEPUP#<session>` | `until`, `challenge_id`, `verified_by` | `ttl` |
//! | push step-up challenge | `USER#<programme>#<user>` | `PUSHCHAL#<id>` | `channel` (`AUTHY` when absent), `session`, `token_exp`, `status`, `expires_at`, `request_id` | `ttl` |
//! | idempotency record | `USER#<programme>#<user>` | `IDEMPOTENCY#<ref>` | `fingerprint`, `lease_id`, `response_status`, `response_body`, `expires_at` | `ttl` |
//! | send-limit counter | `RATE#<kind>#<scope>#<window secs>#<window index>` | `COUNTER` | `count` | `ttl` |
//! | push request index | `PUSHREQ#<request id>` | `PUSHREQ` | `programme_id`, `credential_id`, `challenge_id` (step-up) | `ttl` |
//! | callback nonce | `NONCE#<sha256(nonce, signature)>` | `NONCE` | `expires_at` | `ttl` |
//! | Authy user references | `AUTHYUSER#<authy id>` | `AUTHYUSER` | `refs` (string set of `<programme>#<user>`) | — |
//!
//! Every attribute name in an expression goes through `#names`, so no reserved word
//! (`status`, `count`, `ttl`, ...) is ever written bare.

mod challenges;
mod counters;
mod devices;
mod factors;
mod idempotency;
mod payments;
mod push;
mod registry;

pub use self::{
    challenges::*, counters::*, devices::*, factors::*, idempotency::*, payments::*, push::*,
    registry::*,
};

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
        device::DeviceChallenge,
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

/// The sort keys of the challenges a BIOMETRIC device answers (`CHALLENGE#DEVICE`, the
/// enrolment's, is not among them).
pub const DEVICE_ANSWER_PREFIX: &str = "CHALLENGE#DEVICE#";

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
            ChallengeSlot::DeviceEnrolment => "CHALLENGE#DEVICE".into(),
            ChallengeSlot::DeviceAnswer(id) => format!("{DEVICE_ANSWER_PREFIX}{id}"),
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
    user_items_query(user, "FACTOR#")
}

/// The challenges a user's BIOMETRIC device may answer (settled ones are deleted).
pub fn device_answers_query(user: &UserKey) -> Query {
    user_items_query(user, DEVICE_ANSWER_PREFIX)
}

fn user_items_query(user: &UserKey, prefix: &str) -> Query {
    Query {
        key_condition: "#pk = :pk AND begins_with(#sk, :prefix)".into(),
        names: HashMap::from([("#pk".into(), "pk".into()), ("#sk".into(), "sk".into())]),
        values: HashMap::from([
            (":pk".into(), s(&user_partition(user))),
            (":prefix".into(), s(prefix)),
        ]),
    }
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
    use std::collections::BTreeMap;

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
            channel: Channel::Authy,
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

    #[test]
    fn a_snapshot_round_trips_and_stays_under_its_size() {
        let settings = super::registry::settings_json(&Programme::new("p1", true)).unwrap();
        let programmes = BTreeMap::from([("aa".to_owned(), settings.clone())]);
        let Action::Put(item) = put_snapshot(&programmes, Some(4)).action else {
            panic!()
        };
        let read = snapshot_from_item(&item).unwrap();
        assert_eq!((read.version, read.complete), (5, true));
        assert_eq!(read.programmes, programmes);
        assert_eq!(snapshot_programmes(&read).unwrap()[0].1.id, "p1");
        // Past the cap, keys are left out (read one by one) and the snapshot says so.
        let many: BTreeMap<String, String> = (0..2_000)
            .map(|i| (format!("{i:064x}"), settings.clone()))
            .collect();
        let Action::Put(item) = put_snapshot(&many, None).action else {
            panic!()
        };
        let read = snapshot_from_item(&item).unwrap();
        assert!(!read.complete && !read.programmes.is_empty());
        let size: usize = read.programmes.iter().map(|(h, s)| h.len() + s.len()).sum();
        assert!(size < SNAPSHOT_MAX_BYTES, "{size}");
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
            provider_ref: authy.map(Into::into),
            request_id: "r".into(),
        };
        let factor = FactorRecord {
            channel: Channel::Biometric,
            status: FactorStatus::Active,
            phone_hash: None,
            provider_ref: None,
            pending_request: None,
            verified_by: None,
            updated_at: 0,
            device: None,
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
                    &ApiKeyRecord {
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
            (
                "put_snapshot, the first",
                put_snapshot(&BTreeMap::from([("hash".into(), "{}".into())]), None),
            ),
            (
                "put_snapshot, the next",
                put_snapshot(&BTreeMap::from([("hash".into(), "{}".into())]), Some(3)),
            ),
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
            ("push_factor_active", push_factor_active(&u, Channel::Authy)),
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
                "expire_payment",
                expire_payment(&u, &ChallengeId::from("c")),
            ),
            (
                "count_attempt (device answer)",
                count_attempt(
                    &u,
                    &ChallengeSlot::DeviceAnswer(ChallengeId::from("c")),
                    &"thumb".into(),
                    &"a".into(),
                    0,
                ),
            ),
            (
                "activate_sms",
                activate_sms(&u, &"p".into(), &"a".into(), 0),
            ),
            ("consume_counter", consume_counter(&counter)),
            ("consume_push_counter", consume_counter(&push_counter)),
            ("refund_counter", refund_counter(&counter)),
            ("push_factor_not_active", push_factor_not_active(&u)),
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
            ("reference_provider_user", reference_provider_user("a", &u)),
            (
                "unreference_provider_user",
                unreference_provider_user("a", &u),
            ),
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
            ("device_answers", device_answers_query(&user())),
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
                provider_ref: Some("a".into()),
                pending_request: Some("r".into()),
                verified_by: None,
                updated_at: 42,
                device: None,
            },
            FactorRecord {
                channel: Channel::Sms,
                status: FactorStatus::Active,
                phone_hash: None,
                provider_ref: None,
                pending_request: None,
                verified_by: None,
                updated_at: 0,
                device: None,
            },
        ] {
            assert_eq!(
                factor_from_item(&factor_to_item(&user(), &factor)).unwrap(),
                factor
            );
        }
    }

    /// An Authy factor item exactly as `5adf46a`'s schema wrote it (the provider's user id
    /// under `authy_id`) still reads, as the neutral `provider_ref`; a new write names it
    /// `provider_ref` and drops the old name.
    #[test]
    fn a_factor_written_before_the_neutral_push_seam_still_reads() {
        let mut item = factor_key(&user(), Channel::Authy).to_item();
        item.insert("status".into(), s("ACTIVE"));
        item.insert("updated_at".into(), n(7));
        item.insert("phone_hash".into(), s("p"));
        item.insert("authy_id".into(), s("12345"));
        let factor = factor_from_item(&item).unwrap();
        assert_eq!(factor.provider_ref.as_deref(), Some("12345"));
        assert_eq!(factor.status, FactorStatus::Active);
        let written = factor_to_item(&user(), &factor);
        assert_eq!(written.get("provider_ref"), Some(&s("12345")));
        assert!(!written.contains_key("authy_id"));
        let pending = set_push_pending(
            &user(),
            &PendingPush {
                phone_hash: "p".into(),
                provider_ref: Some("12345".into()),
                request_id: "r".into(),
            },
            8,
        );
        let Action::Update(update) = &pending.action else {
            panic!("an update")
        };
        assert!(update.contains("REMOVE #authy_id"), "{update}");
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
                provider_ref: None,
                pending_request: None,
                verified_by: None,
                updated_at: 0,
                device: None,
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
