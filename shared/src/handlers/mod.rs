//! One module per route, named after what it does (`verify_sms_otp`: verify an SMS code).
//!
//! Each route's handler declares, next to what it does, what it takes and what it reaches:
//! its input (`input`, parsed at the edge), its ports (`ports!`: the store roles and
//! adapters it is handed, and nothing else), whether it is a sandbox-only simulator, and
//! whether it needs a stepped-up token. The pipeline (`http`) authenticates, parses,
//! applies the step-up rule and idempotency, then calls it.

mod announce;
pub mod answer_device_challenge;
pub mod authy_callback;
mod body_fields;
mod caller;
pub mod claim;
mod code_check;
mod device_enrolment;
pub mod device_input;
pub mod device_signed_input;
pub mod enrol_push;
pub mod enrol_sms_otp;
mod field_error;
pub mod get_payment_challenge;
pub mod get_step_up_challenge;
pub mod input;
pub mod jwks;
pub mod list_device_challenges;
pub mod list_factors;
pub mod payment_body;
pub mod payment_push;
pub mod payment_sms;
pub mod ports;
mod push_challenge;
pub mod reply;
pub mod sandbox_jwks;
mod settle;
pub mod simulate_payment;
pub mod simulate_push;
pub mod simulate_step_up;
mod sms_code;
pub mod step_up_push;
pub mod step_up_sms;
pub mod unlink_push;
pub mod update_device_push;
pub mod verify_biometric;
pub mod verify_payment_sms;
pub mod verify_sms_otp;
pub mod verify_step_up_sms;

use async_trait::async_trait;

pub use self::caller::Caller;
// The rooms every route file reaches through `super::`: what a code, a push, a settlement
// and an announcement take, each in the room named for it.
use self::{
    announce::{announce, announce_payment, announce_step_up},
    code_check::{code_is_right, counted, signature_is_right, wrong_code_answer},
    input::Input,
    ports::Ports,
    push_challenge::{
        active_push_factor, count_push, device_answer, push_approval, take_hourly_push, PushFactor,
        Pushers,
    },
    reply::{ApiError, Reply},
    settle::{
        payment_reference_free, settle_payment, settle_step_up, step_up_status, PaymentSettlement,
        PushAnswer,
    },
    sms_code::{enrolment_phone, SmsCode, Unsent},
};
use crate::{app::Context, domain::channel::Channel};

/// When a route needs a stepped-up token (a fresh `mfa`, or a session stepped up by a
/// step-up challenge): adding a push factor while any factor is listed `ACTIVE`, removing
/// one listed `ACTIVE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepUp {
    Never,
    IfAnyFactorActive,
    IfActive(Channel),
}

/// A route called by a programme's app: api key and token first (the pipeline), then this.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    type Input: Input;
    type Ports<'a>: Ports<'a>;
    /// A `GET`: no `idempotency-ref`, no body.
    const IS_GET: bool = false;
    /// A simulator: sandbox programmes only (404 for live ones).
    const SANDBOX_ONLY: bool = false;
    /// The `idempotency-ref` claim rides in the handler's own write (`claim`): no separate
    /// claim before it runs. The handler must then pass `Caller::claim_in_progress` (or
    /// `claim_with_answer`) to the write that changes state, and hand back what became of it
    /// (`handle_riding`).
    const CLAIM_RIDES: bool = false;

    /// The step-up rule for this input.
    fn step_up(_input: &Self::Input) -> StepUp {
        StepUp::Never
    }

    async fn handle(
        ports: Self::Ports<'_>,
        cx: &Context,
        caller: &Caller,
        input: Self::Input,
    ) -> Result<Reply, ApiError>;

    /// A route whose claim rides: its answer and, by value, what became of the claim. By
    /// default no write carried it.
    async fn handle_riding(
        ports: Self::Ports<'_>,
        cx: &Context,
        caller: &Caller,
        input: Self::Input,
    ) -> claim::Ridden {
        claim::Ridden::unwritten(Self::handle(ports, cx, caller, input).await)
    }

    /// The request reused its `idempotency-ref` with another body and is answered 400
    /// without running. On a route that compares a code it still uses one attempt of the
    /// pending challenge (counted, never compared): a code is never compared uncounted, and
    /// a reference is no way around the wrong-code ladder. Other routes change nothing.
    async fn mismatched(
        _ports: Self::Ports<'_>,
        _cx: &Context,
        _caller: &Caller,
        _input: Self::Input,
    ) -> Result<(), ApiError> {
        Ok(())
    }
}

/// A route no programme's app calls: no api key, no token (Authy's signed callback, the
/// proofs' public keys).
#[async_trait]
pub trait PublicHandler: Send + Sync + 'static {
    type Ports<'a>: Ports<'a>;

    async fn handle(
        ports: Self::Ports<'_>,
        cx: &Context,
        request: &lambda_http::Request,
        now: i64,
    ) -> Result<Reply, ApiError>;
}

/// A fresh random id (a challenge's, an attempt's, a lease's, a sandbox's provider request);
/// a failing generator is a 500.
pub fn new_id(cx: &Context) -> Result<String, ApiError> {
    crate::domain::random::random_id(cx.random.as_ref()).map_err(|e| ApiError::Internal(e.into()))
}
