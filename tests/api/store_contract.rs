//! One contract for the storage port, run against the memory store and against the DynamoDB
//! adapter talking over HTTP to the local DynamoDB-compatible server, so the two cannot drift.

use std::sync::Arc;

use additional_factors::domain::ids::{AttemptId, ChallengeId, LeaseId, PhoneHash};
use additional_factors::{
    aws::sdk_config,
    domain::{
        channel::Channel,
        factor::{FactorRecord, FactorStatus},
        idempotency::{IdempotencyRef, KEEP_SECS, LEASE_SECS},
        programme::Programme,
        send_limits::{
            push_counters, sms_counters, Destination, LimitCounter, SendLimits, Sender, SmsBudget,
        },
    },
    store::{
        dynamodb::DynamoStore, memory::MemoryStore, Activation, AttemptOutcome, ChallengeSlot,
        ClaimOutcome, ClaimRecord, NewChallenge, PendingPush, PushPurpose, PushRequest,
        ReserveOutcome, StartOutcome, Store, StoredResponse, UserKey,
    },
};

use crate::helpers::{attempt_id, aws_endpoint, unique};

const NOW: i64 = 1_800_000_000;

async fn dynamo() -> Arc<dyn Store> {
    let config = crate::helpers::patient(sdk_config(Some(&aws_endpoint())).await);
    let store = DynamoStore::new(
        aws_sdk_dynamodb::Client::new(&config),
        format!("contract-{}", unique()),
    );
    store.create_table_if_missing().await.unwrap();
    Arc::new(store)
}

fn memory() -> Arc<dyn Store> {
    Arc::new(MemoryStore::new())
}

fn user(name: &str) -> UserKey {
    UserKey {
        programme_id: "p1".into(),
        credential_id: name.into(),
    }
}

fn challenge(id: &str, phone: &str, limit: u32) -> NewChallenge {
    NewChallenge {
        challenge_id: id.into(),
        code_hash: format!("hash-of-{id}"),
        phone_hash: phone.into(),
        wrong_code_limit: limit,
        expires_at: NOW + 300,
    }
}

/// The counters one live SMS to `phone` (a hash) by `user` of `p1` consumes.
fn sms(limits: &SendLimits, user: &str, phone: &str) -> Vec<LimitCounter> {
    let sender = Sender {
        programme_id: "p1",
        credential_id: user,
        sandbox: false,
    };
    let to = Destination {
        phone_hash: phone,
        country_code: "44",
    };
    sms_counters(limits, &SmsBudget::default(), &sender, &to, NOW, 0)
}

/// The counters one live push request by `user` of `p1` consumes.
fn push(limits: &SendLimits, user: &str) -> Vec<LimitCounter> {
    let sender = Sender {
        programme_id: "p1",
        credential_id: user,
        sandbox: false,
    };
    push_counters(limits, &sender, &format!("phone-of-{user}"), NOW)
}

fn counted(outcome: &AttemptOutcome) -> Option<u32> {
    match outcome {
        AttemptOutcome::Counted(c) => Some(c.attempts),
        _ => None,
    }
}

/// Runs one contract check against both stores.
macro_rules! contract {
    ($name:ident, $check:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn memory() {
                super::$check(super::memory()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn dynamodb() {
                super::$check(super::dynamo().await).await;
            }
        }
    };
}

contract!(programmes, programmes_round_trip);
async fn programmes_round_trip(store: Arc<dyn Store>) {
    let mut programme = Programme::new("p1", true);
    programme.send_limits.per_user_per_hour = 2;
    store.put_programme("hash-1", &programme).await.unwrap();
    assert_eq!(
        store.find_programme("hash-1").await.unwrap(),
        Some(programme)
    );
    assert_eq!(store.find_programme("hash-2").await.unwrap(), None);
}

contract!(factors, factors_put_list_get_delete);
async fn factors_put_list_get_delete(store: Arc<dyn Store>) {
    let u = user("u1");
    assert!(store.list_factors(&u).await.unwrap().is_empty());
    let bio = FactorRecord {
        channel: Channel::Biometric,
        status: FactorStatus::Active,
        phone_hash: None,
        provider_ref: None,
        pending_request: None,
        verified_by: None,
        updated_at: NOW,
        device: None,
    };
    store.put_factor(&u, &bio).await.unwrap();
    assert_eq!(store.list_factors(&u).await.unwrap(), vec![bio.clone()]);
    assert_eq!(
        store.get_factor(&u, Channel::Biometric).await.unwrap(),
        Some(bio)
    );
    assert!(store.list_factors(&user("u2")).await.unwrap().is_empty());
    assert_eq!(
        store
            .delete_factor(&u, Channel::Biometric)
            .await
            .unwrap()
            .map(|f| f.status),
        Some(FactorStatus::Active)
    );
    assert_eq!(
        store.delete_factor(&u, Channel::Biometric).await.unwrap(),
        None
    );
    assert!(store.list_factors(&u).await.unwrap().is_empty());
}

contract!(sms_challenge, sms_challenge_lifecycle);
async fn sms_challenge_lifecycle(store: Arc<dyn Store>) {
    let u = user("u1");
    let counters = sms(&SendLimits::default(), "u1", "phone-a");
    assert_eq!(
        store
            .count_sms_attempt(&u, &PhoneHash::from("phone-a"), &attempt_id(), NOW)
            .await
            .unwrap(),
        AttemptOutcome::NoChallenge
    );
    assert_eq!(
        store
            .start_sms_challenge(&u, &challenge("c1", "phone-a", 3), &counters, NOW)
            .await
            .unwrap(),
        StartOutcome::Started
    );
    let factors = store.list_factors(&u).await.unwrap();
    assert_eq!(factors.len(), 1);
    assert_eq!(factors[0].status, FactorStatus::PendingVerification);
    // Another phone: no challenge, nothing counted.
    assert_eq!(
        store
            .count_sms_attempt(&u, &PhoneHash::from("phone-b"), &attempt_id(), NOW)
            .await
            .unwrap(),
        AttemptOutcome::NoChallenge
    );
    for expected in 1..=3 {
        let outcome = store
            .count_sms_attempt(&u, &PhoneHash::from("phone-a"), &attempt_id(), NOW)
            .await
            .unwrap();
        assert_eq!(counted(&outcome), Some(expected));
        if let AttemptOutcome::Counted(c) = outcome {
            assert_eq!(
                (c.challenge_id.as_str(), c.code_hash.as_str(), c.limit),
                ("c1", "hash-of-c1", 3)
            );
        }
    }
    assert_eq!(
        store
            .count_sms_attempt(&u, &PhoneHash::from("phone-a"), &attempt_id(), NOW)
            .await
            .unwrap(),
        AttemptOutcome::Dead
    );
    // A new challenge replaces the dead one.
    store
        .start_sms_challenge(&u, &challenge("c2", "phone-a", 3), &counters, NOW)
        .await
        .unwrap();
    assert_eq!(
        counted(
            &store
                .count_sms_attempt(&u, &PhoneHash::from("phone-a"), &attempt_id(), NOW)
                .await
                .unwrap()
        ),
        Some(1)
    );
    assert!(
        !store
            .activate_sms_factor(
                &u,
                &ChallengeId::from("c1"),
                &PhoneHash::from("phone-a"),
                &AttemptId::from("attempt-1"),
                NOW
            )
            .await
            .unwrap(),
        "a replaced challenge"
    );
    assert!(store
        .activate_sms_factor(
            &u,
            &ChallengeId::from("c2"),
            &PhoneHash::from("phone-a"),
            &AttemptId::from("attempt-2"),
            NOW
        )
        .await
        .unwrap());
    assert!(
        !store
            .activate_sms_factor(
                &u,
                &ChallengeId::from("c2"),
                &PhoneHash::from("phone-a"),
                &AttemptId::from("attempt-3"),
                NOW
            )
            .await
            .unwrap(),
        "consumed once"
    );
    assert!(
        store
            .activate_sms_factor(
                &u,
                &ChallengeId::from("c2"),
                &PhoneHash::from("phone-a"),
                &AttemptId::from("attempt-2"),
                NOW
            )
            .await
            .unwrap(),
        "the attempt that consumed it, resent, finds its own success"
    );
    let factor = store.get_factor(&u, Channel::Sms).await.unwrap().unwrap();
    assert_eq!(
        (factor.status, factor.phone_hash.as_deref()),
        (FactorStatus::Active, Some("phone-a"))
    );
    assert_eq!(
        store
            .count_sms_attempt(&u, &PhoneHash::from("phone-a"), &attempt_id(), NOW)
            .await
            .unwrap(),
        AttemptOutcome::NoChallenge
    );
    // Active for this phone: step one refuses and consumes nothing; another phone may start.
    assert_eq!(
        store
            .start_sms_challenge(&u, &challenge("c3", "phone-a", 3), &counters, NOW)
            .await
            .unwrap(),
        StartOutcome::AlreadyRegistered
    );
    let other = sms(&SendLimits::default(), "u1", "phone-b");
    assert_eq!(
        store
            .start_sms_challenge(&u, &challenge("c4", "phone-b", 3), &other, NOW)
            .await
            .unwrap(),
        StartOutcome::Started
    );
}

contract!(expiry, an_expired_challenge_still_stored_is_expired);
async fn an_expired_challenge_still_stored_is_expired(store: Arc<dyn Store>) {
    let u = user("u1");
    store
        .start_sms_challenge(&u, &challenge("c1", "p", 5), &[], NOW)
        .await
        .unwrap();
    assert_eq!(
        counted(
            &store
                .count_sms_attempt(&u, &PhoneHash::from("p"), &attempt_id(), NOW + 299)
                .await
                .unwrap()
        ),
        Some(1)
    );
    assert_eq!(
        store
            .count_sms_attempt(&u, &PhoneHash::from("p"), &attempt_id(), NOW + 300)
            .await
            .unwrap(),
        AttemptOutcome::Expired
    );
    assert_eq!(
        store
            .count_sms_attempt(&u, &PhoneHash::from("p"), &attempt_id(), NOW + 301)
            .await
            .unwrap(),
        AttemptOutcome::Expired
    );
}

contract!(attempt_ids, an_attempt_id_is_counted_once);
async fn an_attempt_id_is_counted_once(store: Arc<dyn Store>) {
    let u = user("u1");
    store
        .start_sms_challenge(&u, &challenge("c1", "p", 2), &[], NOW)
        .await
        .unwrap();
    let first = attempt_id();
    for _ in 0..3 {
        assert_eq!(
            counted(
                &store
                    .count_sms_attempt(&u, &PhoneHash::from("p"), &first, NOW)
                    .await
                    .unwrap()
            ),
            Some(1),
            "the same attempt again is not counted again"
        );
    }
    let second = attempt_id();
    assert_eq!(
        counted(
            &store
                .count_sms_attempt(&u, &PhoneHash::from("p"), &second, NOW)
                .await
                .unwrap()
        ),
        Some(2)
    );
    // The challenge is now dead, yet the last attempt, repeated, still reads its count.
    assert_eq!(
        counted(
            &store
                .count_sms_attempt(&u, &PhoneHash::from("p"), &second, NOW)
                .await
                .unwrap()
        ),
        Some(2)
    );
    assert_eq!(
        store
            .count_sms_attempt(&u, &PhoneHash::from("p"), &attempt_id(), NOW)
            .await
            .unwrap(),
        AttemptOutcome::Dead
    );
}

contract!(
    attempt_ids_between,
    an_attempt_is_known_after_other_attempts
);
async fn an_attempt_is_known_after_other_attempts(store: Arc<dyn Store>) {
    let u = user("u1");
    store
        .start_sms_challenge(&u, &challenge("c1", "p", 5), &[], NOW)
        .await
        .unwrap();
    let (a, b) = (attempt_id(), attempt_id());
    let count = |id: &AttemptId| {
        let (store, u, id) = (store.clone(), u.clone(), id.clone());
        async move {
            counted(
                &store
                    .count_sms_attempt(&u, &PhoneHash::from("p"), &id, NOW)
                    .await
                    .unwrap(),
            )
        }
    };
    assert_eq!(count(&a).await, Some(1));
    assert_eq!(count(&b).await, Some(2));
    // `a` again, after `b`: still recognised, not counted a third time.
    assert_eq!(count(&a).await, Some(2));
    assert_eq!(count(&b).await, Some(2));
}

contract!(riding_claims, a_claim_rides_in_the_operations_write);
async fn a_claim_rides_in_the_operations_write(store: Arc<dyn Store>) {
    let u = user("u1");
    let record = |lease: &str, fingerprint: &str, response: Option<StoredResponse>| ClaimRecord {
        reference: IdempotencyRef::parse(b"ride-1").unwrap(),
        fingerprint: fingerprint.into(),
        lease_id: LeaseId::from(lease),
        response,
    };
    // Step one carries the claim (in progress): both written, or neither.
    assert_eq!(
        store
            .start_sms_challenge_claiming(
                &u,
                &challenge("c1", "p", 5),
                &[],
                Some(&record("l1", "f1", None)),
                NOW
            )
            .await
            .unwrap(),
        StartOutcome::Started
    );
    assert_eq!(
        store
            .claim_idempotency(
                &u,
                &record("l2", "f1", None).reference,
                "f1",
                &LeaseId::from("l2"),
                NOW
            )
            .await
            .unwrap(),
        ClaimOutcome::InProgress,
        "the transaction wrote the claim"
    );
    // A second step one under the same reference is refused for the claim, first of all:
    // no new challenge replaces the first.
    assert_eq!(
        store
            .start_sms_challenge_claiming(
                &u,
                &challenge("c2", "p", 5),
                &[],
                Some(&record("l2", "f1", None)),
                NOW
            )
            .await
            .unwrap(),
        StartOutcome::Unclaimed(ClaimOutcome::InProgress)
    );
    assert_eq!(
        store
            .start_sms_challenge_claiming(
                &u,
                &challenge("c2", "p", 5),
                &[],
                Some(&record("l2", "f2", None)),
                NOW
            )
            .await
            .unwrap(),
        StartOutcome::Unclaimed(ClaimOutcome::Mismatch)
    );
    let attempt = attempt_id();
    let AttemptOutcome::Counted(counted) = store
        .count_sms_attempt(&u, &PhoneHash::from("p"), &attempt, NOW)
        .await
        .unwrap()
    else {
        panic!("the first challenge is still there");
    };
    assert_eq!(counted.challenge_id, ChallengeId::from("c1"));
    // The first request's answer is kept; the activation carries another reference's final
    // record, written with it.
    let no_content = StoredResponse {
        status: 204,
        body: String::new(),
    };
    store
        .complete_idempotency(
            &u,
            &record("l1", "f1", None).reference,
            &LeaseId::from("l1"),
            &no_content,
            NOW,
        )
        .await
        .unwrap();
    let activation = |lease: &'static str, reference: &'static [u8]| {
        let store = store.clone();
        let u = u.clone();
        let attempt = attempt.clone();
        let no_content = no_content.clone();
        async move {
            let claim = ClaimRecord {
                reference: IdempotencyRef::parse(reference).unwrap(),
                fingerprint: "fv".into(),
                lease_id: LeaseId::from(lease),
                response: Some(no_content),
            };
            store
                .activate_sms_factor_claiming(
                    &u,
                    &ChallengeId::from("c1"),
                    &PhoneHash::from("p"),
                    &attempt,
                    Some(&claim),
                    NOW,
                )
                .await
                .unwrap()
        }
    };
    // Under the enrolment's (kept) reference: refused for the claim, nothing activated.
    assert_eq!(
        activation("l3", b"ride-1").await,
        Activation::Unclaimed(ClaimOutcome::Mismatch)
    );
    assert_eq!(
        store
            .get_factor(&u, Channel::Sms)
            .await
            .unwrap()
            .unwrap()
            .status,
        FactorStatus::PendingVerification
    );
    assert_eq!(activation("l3", b"ride-2").await, Activation::Activated);
    // Its record is final: a retry replays it, and releasing it does nothing.
    store
        .release_idempotency(
            &u,
            &IdempotencyRef::parse(b"ride-2").unwrap(),
            &LeaseId::from("l3"),
        )
        .await
        .unwrap();
    assert_eq!(
        activation("l4", b"ride-2").await,
        Activation::Unclaimed(ClaimOutcome::Replay(no_content.clone()))
    );
    // A record kept by one conditional put: written once, then the live record's answer.
    let kept = ClaimRecord {
        reference: IdempotencyRef::parse(b"ride-3").unwrap(),
        fingerprint: "fk".into(),
        lease_id: LeaseId::from("l5"),
        response: Some(StoredResponse {
            status: 409,
            body: r#"{"errorCode":"STATE_INVALID"}"#.into(),
        }),
    };
    assert_eq!(
        store.keep_idempotency(&u, &kept, NOW).await.unwrap(),
        ClaimOutcome::Claimed
    );
    let again = ClaimRecord {
        lease_id: LeaseId::from("l6"),
        ..kept.clone()
    };
    assert_eq!(
        store.keep_idempotency(&u, &again, NOW).await.unwrap(),
        ClaimOutcome::Replay(kept.response.clone().unwrap())
    );
    let other = ClaimRecord {
        fingerprint: "other".into(),
        ..again
    };
    assert_eq!(
        store.keep_idempotency(&u, &other, NOW).await.unwrap(),
        ClaimOutcome::Mismatch
    );
    // Kept for a day, not for a lease.
    assert_eq!(
        store
            .keep_idempotency(&u, &other, NOW + LEASE_SECS + 1)
            .await
            .unwrap(),
        ClaimOutcome::Mismatch
    );
}

contract!(
    own_attempt,
    a_recognised_attempt_still_needs_its_phone_and_a_live_challenge
);
async fn a_recognised_attempt_still_needs_its_phone_and_a_live_challenge(store: Arc<dyn Store>) {
    let u = user("u1");
    store
        .start_sms_challenge(&u, &challenge("c1", "p", 5), &[], NOW)
        .await
        .unwrap();
    let a = attempt_id();
    let count = |phone: &'static str, at: i64| {
        let (store, u, a) = (store.clone(), u.clone(), a.clone());
        async move {
            store
                .count_sms_attempt(&u, &PhoneHash::from(phone), &a, at)
                .await
                .unwrap()
        }
    };
    assert_eq!(counted(&count("p", NOW).await), Some(1));
    // The attempt is known, but a token with another phone has no challenge here.
    assert_eq!(count("q", NOW).await, AttemptOutcome::NoChallenge);
    // ...and once the challenge has expired, knowing the attempt compares nothing.
    assert_eq!(count("p", NOW + 300).await, AttemptOutcome::Expired);
    // While it lives, on its phone, it is recognised and not counted again.
    assert_eq!(counted(&count("p", NOW + 299).await), Some(1));
}

contract!(
    provider_user_references,
    an_authy_user_is_released_by_its_last_factor
);
async fn an_authy_user_is_released_by_its_last_factor(store: Arc<dyn Store>) {
    // One person, two programmes: Authy gives the phone one user id in both.
    let (a, b) = (
        user("u1"),
        UserKey {
            programme_id: "p2".into(),
            credential_id: "u1".into(),
        },
    );
    let pending = |request: &str| PendingPush {
        phone_hash: "p".into(),
        provider_ref: Some("555".into()),
        request_id: request.into(),
    };
    assert!(store
        .set_push_pending(&a, &pending("r1"), NOW)
        .await
        .unwrap());
    // Enrolling again holds one reference, not two.
    assert!(store
        .set_push_pending(&a, &pending("r2"), NOW)
        .await
        .unwrap());
    assert!(store
        .set_push_pending(&b, &pending("r3"), NOW)
        .await
        .unwrap());
    assert!(
        !store.release_provider_user("555", &a).await.unwrap(),
        "p2's factor still uses it"
    );
    assert!(store.release_provider_user("555", &b).await.unwrap());
    // A user no factor ever referenced (enrolled before references were kept) is free.
    assert!(store.release_provider_user("777", &a).await.unwrap());
}

contract!(limits, full_counters_refuse_and_write_nothing);
async fn full_counters_refuse_and_write_nothing(store: Arc<dyn Store>) {
    let u = user("u1");
    let limits = SendLimits {
        per_user_per_hour: 2,
        ..SendLimits::default()
    };
    let counters = sms(&limits, "u1", "p");
    for id in ["c1", "c2"] {
        assert_eq!(
            store
                .start_sms_challenge(&u, &challenge(id, "p", 5), &counters, NOW)
                .await
                .unwrap(),
            StartOutcome::Started
        );
    }
    assert_eq!(
        store
            .start_sms_challenge(&u, &challenge("c3", "p", 5), &counters, NOW)
            .await
            .unwrap(),
        StartOutcome::Limited(vec![0])
    );
    // Nothing written: c2 is still the challenge.
    assert!(store
        .activate_sms_factor(
            &u,
            &ChallengeId::from("c2"),
            &PhoneHash::from("p"),
            &AttemptId::from("a"),
            NOW
        )
        .await
        .unwrap());
    // A zero limit refuses the first request.
    let zero = SendLimits {
        per_number_per_day: 0,
        ..SendLimits::default()
    };
    let counters = sms(&zero, "u2", "q");
    assert_eq!(
        store
            .start_sms_challenge(&user("u2"), &challenge("c", "q", 5), &counters, NOW)
            .await
            .unwrap(),
        StartOutcome::Limited(vec![2])
    );
}

contract!(
    abandon,
    an_abandoned_challenge_is_gone_and_its_counters_refunded
);
async fn an_abandoned_challenge_is_gone_and_its_counters_refunded(store: Arc<dyn Store>) {
    let u = user("u1");
    let limits = SendLimits {
        per_user_per_hour: 1,
        ..SendLimits::default()
    };
    let counters = sms(&limits, "u1", "p");
    store
        .start_sms_challenge(&u, &challenge("c1", "p", 5), &counters, NOW)
        .await
        .unwrap();
    store
        .abandon_challenge(
            &u,
            &ChallengeSlot::Enrolment,
            &ChallengeId::from("c1"),
            &counters,
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .count_sms_attempt(&u, &PhoneHash::from("p"), &attempt_id(), NOW)
            .await
            .unwrap(),
        AttemptOutcome::NoChallenge
    );
    assert_eq!(
        store
            .start_sms_challenge(&u, &challenge("c2", "p", 5), &counters, NOW)
            .await
            .unwrap(),
        StartOutcome::Started
    );
    // Abandoning a challenge that was replaced leaves the new one alone.
    store
        .abandon_challenge(&u, &ChallengeSlot::Enrolment, &ChallengeId::from("c1"), &[])
        .await
        .unwrap();
    assert!(counted(
        &store
            .count_sms_attempt(&u, &PhoneHash::from("p"), &attempt_id(), NOW)
            .await
            .unwrap()
    )
    .is_some());
}

contract!(push, push_enrolment_lifecycle);
async fn push_enrolment_lifecycle(store: Arc<dyn Store>) {
    let u = user("u1");
    let limits = SendLimits {
        push_per_user_per_hour: 2,
        ..SendLimits::default()
    };
    let counters = push(&limits, "u1");
    assert_eq!(
        store
            .reserve_push_enrolment(&u, &counters, NOW)
            .await
            .unwrap(),
        ReserveOutcome::Reserved
    );
    let pending = PendingPush {
        phone_hash: "p".into(),
        provider_ref: Some("a1".into()),
        request_id: "r1".into(),
    };
    assert!(store.set_push_pending(&u, &pending, NOW).await.unwrap());
    assert_eq!(
        store.find_push_request("r1").await.unwrap(),
        Some(PushRequest {
            user: u.clone(),
            purpose: PushPurpose::Enrolment
        })
    );
    assert_eq!(store.find_push_request("r0").await.unwrap(), None);
    assert!(
        !store.resolve_push(&u, Some("r0"), true, NOW).await.unwrap(),
        "another request"
    );
    assert!(store.resolve_push(&u, Some("r1"), true, NOW).await.unwrap());
    assert!(
        !store
            .resolve_push(&u, Some("r1"), false, NOW)
            .await
            .unwrap(),
        "no longer pending"
    );
    let factor = store.get_factor(&u, Channel::Authy).await.unwrap().unwrap();
    assert_eq!(
        (
            factor.status,
            factor.provider_ref.as_deref(),
            factor.pending_request
        ),
        (FactorStatus::Active, Some("a1"), None)
    );
    assert_eq!(
        store
            .reserve_push_enrolment(&u, &counters, NOW)
            .await
            .unwrap(),
        ReserveOutcome::AlreadyRegistered
    );
    assert!(!store.set_push_pending(&u, &pending, NOW).await.unwrap());
    // Limits and refunds.
    let v = user("u2");
    let counters = push(&limits, "u2");
    for _ in 0..2 {
        assert_eq!(
            store
                .reserve_push_enrolment(&v, &counters, NOW)
                .await
                .unwrap(),
            ReserveOutcome::Reserved
        );
    }
    assert_eq!(
        store
            .reserve_push_enrolment(&v, &counters, NOW)
            .await
            .unwrap(),
        ReserveOutcome::Limited(vec![0])
    );
    store.refund_counters(&counters).await.unwrap();
    assert_eq!(
        store
            .reserve_push_enrolment(&v, &counters, NOW)
            .await
            .unwrap(),
        ReserveOutcome::Reserved
    );
    // Sandbox requests have no provider id; rejecting makes the factor inactive.
    let sandbox = PendingPush {
        phone_hash: "p".into(),
        provider_ref: None,
        request_id: "r2".into(),
    };
    assert!(store.set_push_pending(&v, &sandbox, NOW).await.unwrap());
    assert!(store.resolve_push(&v, None, false, NOW).await.unwrap());
    assert_eq!(
        store
            .get_factor(&v, Channel::Authy)
            .await
            .unwrap()
            .unwrap()
            .status,
        FactorStatus::Inactive
    );
}

contract!(idempotency, idempotency_claims);
async fn idempotency_claims(store: Arc<dyn Store>) {
    let u = user("u1");
    let r = IdempotencyRef::parse(b"ref-1").unwrap();
    assert_eq!(
        store
            .claim_idempotency(&u, &r, "f1", &LeaseId::from("lease-1"), NOW)
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    assert_eq!(
        store
            .claim_idempotency(&u, &r, "f1", &LeaseId::from("lease-2"), NOW)
            .await
            .unwrap(),
        ClaimOutcome::InProgress
    );
    assert_eq!(
        store
            .claim_idempotency(&u, &r, "f2", &LeaseId::from("lease-2"), NOW)
            .await
            .unwrap(),
        ClaimOutcome::Mismatch
    );
    // Another user's identical reference is unrelated.
    assert_eq!(
        store
            .claim_idempotency(&user("u2"), &r, "f1", &LeaseId::from("lease-3"), NOW)
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    // Only the lease holder completes or releases.
    let response = StoredResponse {
        status: 409,
        body: r#"{"errorCode":"STATE_INVALID"}"#.into(),
    };
    store
        .complete_idempotency(&u, &r, &LeaseId::from("lease-x"), &response, NOW)
        .await
        .unwrap();
    store
        .release_idempotency(&u, &r, &LeaseId::from("lease-x"))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency(&u, &r, "f1", &LeaseId::from("lease-2"), NOW)
            .await
            .unwrap(),
        ClaimOutcome::InProgress
    );
    store
        .complete_idempotency(&u, &r, &LeaseId::from("lease-1"), &response, NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency(&u, &r, "f1", &LeaseId::from("l"), NOW + 1)
            .await
            .unwrap(),
        ClaimOutcome::Replay(response.clone())
    );
    assert_eq!(
        store
            .claim_idempotency(&u, &r, "f1", &LeaseId::from("l"), NOW + KEEP_SECS - 1)
            .await
            .unwrap(),
        ClaimOutcome::Replay(response)
    );
    // Kept records and abandoned leases expire by the service's own clock.
    assert_eq!(
        store
            .claim_idempotency(&u, &r, "f9", &LeaseId::from("l"), NOW + KEEP_SECS)
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    let other = IdempotencyRef::parse(b"ref-2").unwrap();
    store
        .claim_idempotency(&u, &other, "f", &LeaseId::from("dead-lease"), NOW)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency(&u, &other, "f", &LeaseId::from("l"), NOW + LEASE_SECS)
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
    // A released claim runs again.
    store
        .release_idempotency(&u, &other, &LeaseId::from("l"))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency(&u, &other, "f", &LeaseId::from("m"), NOW + LEASE_SECS)
            .await
            .unwrap(),
        ClaimOutcome::Claimed
    );
}

contract!(
    concurrent_attempts,
    fifty_parallel_attempts_count_at_most_the_limit
);
async fn fifty_parallel_attempts_count_at_most_the_limit(store: Arc<dyn Store>) {
    let u = user("u1");
    store
        .start_sms_challenge(&u, &challenge("c1", "p", 5), &[], NOW)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (store, u) = (store.clone(), u.clone());
            tokio::spawn(async move {
                store
                    .count_sms_attempt(&u, &PhoneHash::from("p"), &attempt_id(), NOW)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut attempts = Vec::new();
    for task in tasks {
        if let Some(n) = counted(&task.await.unwrap()) {
            attempts.push(n);
        }
    }
    attempts.sort();
    assert_eq!(attempts, vec![1, 2, 3, 4, 5]);
}

contract!(concurrent_claims, twenty_parallel_claims_have_one_winner);
async fn twenty_parallel_claims_have_one_winner(store: Arc<dyn Store>) {
    let u = user("u1");
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, u) = (store.clone(), u.clone());
            tokio::spawn(async move {
                let r = IdempotencyRef::parse(b"same").unwrap();
                store
                    .claim_idempotency(&u, &r, "f", &LeaseId::new(format!("lease-{i}")), NOW)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut claimed = 0;
    for task in tasks {
        match task.await.unwrap() {
            ClaimOutcome::Claimed => claimed += 1,
            ClaimOutcome::InProgress => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(claimed, 1);
}

contract!(device_lifecycle, a_device_enrols_answers_and_is_removed);
async fn a_device_enrols_answers_and_is_removed(store: Arc<dyn Store>) {
    use additional_factors::{
        domain::{
            device::{signing_input, Device, DeviceKey, Platform},
            step_up::{ChallengeStatus, PushChallenge, SessionId},
        },
        store::DeviceStart,
    };
    let u = user("device-owner");
    let other = user("someone-else");
    let key = DeviceKey::from_jwk(&crate::helpers::Device::new().jwk()).unwrap();
    let thumbprint = key.thumbprint();
    let pending = FactorRecord {
        channel: Channel::Biometric,
        status: FactorStatus::PendingVerification,
        phone_hash: None,
        provider_ref: None,
        pending_request: None,
        verified_by: None,
        updated_at: NOW,
        device: Some(Device {
            key,
            platform: Platform::Fcm,
            push_token: "token".into(),
            name: "Pixel 8".into(),
            endpoint: None,
        }),
    };
    let enrolment = challenge("enrol-1", &thumbprint, 5);
    assert_eq!(
        store
            .start_device_enrolment(&u, &pending, &enrolment, NOW)
            .await
            .unwrap(),
        DeviceStart::Started
    );
    // Activated: the key is registered, and another user cannot enrol it.
    assert!(store
        .activate_device(&u, &enrolment.challenge_id, &thumbprint, "endpoint-1", NOW)
        .await
        .unwrap());
    assert_eq!(
        store
            .start_device_enrolment(&other, &pending, &challenge("enrol-2", &thumbprint, 5), NOW)
            .await
            .unwrap(),
        DeviceStart::KeyTaken
    );
    // Two challenges wait for the device's answer; a third is another key's.
    let answer = |id: &str, kind: &str, phone: &str, at: i64| {
        let mut fields = serde_json::Map::new();
        fields.insert("type".into(), serde_json::json!(kind));
        NewChallenge {
            challenge_id: ChallengeId::from(id),
            code_hash: signing_input(fields, &[9; 32], at + 300),
            phone_hash: PhoneHash::from(phone),
            wrong_code_limit: 5,
            expires_at: at + 300,
        }
    };
    let push = |id: &str| PushChallenge {
        id: ChallengeId::from(id),
        channel: Channel::Biometric,
        session: SessionId::of_token(None, "t"),
        token_exp: NOW + 3_600,
        lifetime_secs: 900,
        status: ChallengeStatus::Pending,
        expires_at: NOW + 300,
        request_id: id.into(),
    };
    for (id, at, phone) in [
        ("s1", NOW, thumbprint.as_str()),
        ("s2", NOW + 1, thumbprint.as_str()),
        ("s3", NOW + 2, "another-key"),
    ] {
        store
            .put_push_challenge(&u, &push(id), Some(&answer(id, "step_up", phone, at)), at)
            .await
            .unwrap();
    }
    let listed = store
        .device_challenges(&u, &thumbprint, 10, NOW + 2)
        .await
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["s2", "s1"], "this key's, newest first");
    assert_eq!(
        store
            .device_challenges(&u, &thumbprint, 1, NOW + 2)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .device_challenges(&other, &thumbprint, 10, NOW)
        .await
        .unwrap()
        .is_empty());
    // Counted as a code, for this key only.
    let slot = ChallengeSlot::DeviceAnswer(ChallengeId::from("s1"));
    assert_eq!(
        counted(
            &store
                .count_attempt(
                    &u,
                    &slot,
                    &PhoneHash::from(thumbprint.as_str()),
                    &attempt_id(),
                    NOW
                )
                .await
                .unwrap()
        ),
        Some(1)
    );
    assert_eq!(
        store
            .count_attempt(
                &u,
                &slot,
                &PhoneHash::from("another-key"),
                &attempt_id(),
                NOW
            )
            .await
            .unwrap(),
        AttemptOutcome::NoChallenge
    );
    // Settling consumes the answer: listed no more, settled once.
    assert!(store
        .settle_push_challenge(&u, &push("s1"), None, NOW + 3)
        .await
        .unwrap());
    assert!(!store
        .settle_push_challenge(&u, &push("s1"), None, NOW + 3)
        .await
        .unwrap());
    let ids: Vec<String> = store
        .device_challenges(&u, &thumbprint, 10, NOW + 3)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id.as_str().to_owned())
        .collect();
    assert_eq!(ids, ["s2"]);
    // Past its time, nothing is listed.
    assert!(store
        .device_challenges(&u, &thumbprint, 10, NOW + 301)
        .await
        .unwrap()
        .is_empty());
    // Removed: the factor, the key, the answers; the waiting challenge reads EXPIRED and
    // cannot settle, even under a factor enrolled again.
    store.remove_device(&u, &thumbprint).await.unwrap();
    assert!(store
        .get_factor(&u, Channel::Biometric)
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .get_push_challenge(&u, &ChallengeId::from("s2"))
            .await
            .unwrap()
            .unwrap()
            .status,
        ChallengeStatus::Expired
    );
    assert_eq!(
        store
            .get_push_challenge(&u, &ChallengeId::from("s1"))
            .await
            .unwrap()
            .unwrap()
            .status,
        ChallengeStatus::Declined
    );
    assert!(store
        .device_challenges(&u, &thumbprint, 10, NOW + 4)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .start_device_enrolment(&other, &pending, &challenge("enrol-3", &thumbprint, 5), NOW)
            .await
            .unwrap(),
        DeviceStart::Started,
        "the key is free again"
    );
}
