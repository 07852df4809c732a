//! Which route a method and path name: what API Gateway does in production, done here for
//! the local server (and checked by the tests against `openapi.yaml`).

use lambda_http::Request;

use crate::{
    app::App,
    handlers::{
        answer_device_challenge::AnswerDeviceChallenge, authy_callback::AuthyCallback,
        enrol_push::EnrolPush, enrol_sms_otp::EnrolSmsOtp,
        get_payment_challenge::GetPaymentChallenge, get_step_up_challenge::GetStepUpChallenge,
        jwks::Jwks, list_device_challenges::ListDeviceChallenges, list_factors::ListFactors,
        payment_push::PaymentPush, payment_sms::PaymentSms, reply::ApiError, reply::Reply,
        sandbox_jwks::SandboxJwks, simulate_payment::SimulatePayment, simulate_push::SimulatePush,
        simulate_step_up::SimulateStepUp, step_up_push::StepUpPush, step_up_sms::StepUpSms,
        unlink_push::UnlinkPush, update_device_push::UpdateDevicePush,
        verify_biometric::VerifyBiometric, verify_payment_sms::VerifyPaymentSms,
        verify_sms_otp::VerifySmsOtp, verify_step_up_sms::VerifyStepUpSms,
    },
};

/// The body cap of every route called by programmes' apps.
pub const MAX_USER_BODY_BYTES: usize = 4 * 1024;
/// The body cap of a BIOMETRIC enrolment and of a device's new push token (a push token may
/// be 4,096 characters, beside the device's key and name, or the signature).
pub const MAX_ENROLMENT_BODY_BYTES: usize = 8 * 1024;
/// The body cap of Authy's callback.
pub const MAX_CALLBACK_BODY_BYTES: usize = 32 * 1024;

/// Every route of the API. Each one is a Lambda function of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Route {
    /// `GET /authentication_factors`
    ListFactors,
    /// `POST /authentication_factors/otp/{channel}`
    EnrolSmsOtp,
    /// `POST /authentication_factors/otp/{channel}/verify`
    VerifySmsOtp,
    /// `POST /authentication_factors/push/{channel}`
    EnrolPush,
    /// `DELETE /authentication_factors/push/{channel}`
    UnlinkPush,
    /// `PUT /authentication_factors/push/{channel}`: a BIOMETRIC device's new push token
    UpdateDevicePush,
    /// `POST /authentication_factors/push/{channel}/verify`: a BIOMETRIC device's enrolment
    /// signature
    VerifyBiometric,
    /// `GET /authentication_factors/push/{channel}/challenges`: what a BIOMETRIC device has to
    /// answer
    ListDeviceChallenges,
    /// `POST /authentication_factors/push/{channel}/challenges/{id}`: a BIOMETRIC device's
    /// signed answer to a challenge
    AnswerDeviceChallenge,
    /// `POST /simulate/authentication_factors/push/{channel}/accept` (sandbox only)
    SimulatePushAccept,
    /// `POST /simulate/authentication_factors/push/{channel}/reject` (sandbox only)
    SimulatePushReject,
    /// `POST /webhooks/authy` (Authy's signed callback; no api key or token)
    AuthyCallback,
    /// `POST /stepup/challenges/otp/{channel}`: send a step-up code
    StepUpSms,
    /// `POST /stepup/challenges/otp/{channel}/verify`: the code steps the session up
    VerifyStepUpSms,
    /// `POST /stepup/challenges/push/{channel}`: push a step-up approval request
    StepUpPush,
    /// `GET /stepup/challenges/{id}`: a push step-up challenge's status
    GetStepUpChallenge,
    /// `POST /simulate/stepup/challenges/{id}/accept` (sandbox only)
    SimulateStepUpAccept,
    /// `POST /simulate/stepup/challenges/{id}/reject` (sandbox only)
    SimulateStepUpReject,
    /// `POST /challenges/otp/{channel}`: a payment challenge by SMS
    PaymentSms,
    /// `POST /challenges/{scaChallengeId}/otp/{channel}/verify`: the code yields a proof
    VerifyPaymentSms,
    /// `POST /challenges/push/{channel}`: a payment challenge pushed to Authy
    PaymentPush,
    /// `GET /challenges/{scaChallengeId}`: a payment challenge's status and proof
    GetPaymentChallenge,
    /// `GET /.well-known/jwks.json`: the live proofs' public keys (no credentials)
    Jwks,
    /// `GET /.well-known/sandbox-jwks.json`: the sandbox proofs' public key (no credentials)
    SandboxJwks,
    /// `POST /simulate/challenges/{scaChallengeId}/accept` (sandbox only)
    SimulatePaymentAccept,
    /// `POST /simulate/challenges/{scaChallengeId}/reject` (sandbox only)
    SimulatePaymentReject,
}

impl Route {
    pub const ALL: [Route; 26] = [
        Route::ListFactors,
        Route::EnrolSmsOtp,
        Route::VerifySmsOtp,
        Route::EnrolPush,
        Route::UnlinkPush,
        Route::UpdateDevicePush,
        Route::VerifyBiometric,
        Route::ListDeviceChallenges,
        Route::AnswerDeviceChallenge,
        Route::SimulatePushAccept,
        Route::SimulatePushReject,
        Route::AuthyCallback,
        Route::StepUpSms,
        Route::VerifyStepUpSms,
        Route::StepUpPush,
        Route::GetStepUpChallenge,
        Route::SimulateStepUpAccept,
        Route::SimulateStepUpReject,
        Route::PaymentSms,
        Route::VerifyPaymentSms,
        Route::PaymentPush,
        Route::GetPaymentChallenge,
        Route::Jwks,
        Route::SandboxJwks,
        Route::SimulatePaymentAccept,
        Route::SimulatePaymentReject,
    ];

    /// A short name for logs and fingerprints.
    pub fn name(self) -> &'static str {
        match self {
            Route::ListFactors => "list_factors",
            Route::EnrolSmsOtp => "enrol_sms_otp",
            Route::VerifySmsOtp => "verify_sms_otp",
            Route::EnrolPush => "enrol_push",
            Route::UnlinkPush => "unlink_push",
            Route::UpdateDevicePush => "update_device_push",
            Route::VerifyBiometric => "verify_biometric",
            Route::ListDeviceChallenges => "list_device_challenges",
            Route::AnswerDeviceChallenge => "answer_device_challenge",
            Route::SimulatePushAccept => "simulate_push_accept",
            Route::SimulatePushReject => "simulate_push_reject",
            Route::AuthyCallback => "authy_callback",
            Route::StepUpSms => "step_up_sms",
            Route::VerifyStepUpSms => "verify_step_up_sms",
            Route::StepUpPush => "step_up_push",
            Route::GetStepUpChallenge => "get_step_up_challenge",
            Route::SimulateStepUpAccept => "simulate_step_up_accept",
            Route::SimulateStepUpReject => "simulate_step_up_reject",
            Route::PaymentSms => "payment_sms",
            Route::VerifyPaymentSms => "verify_payment_sms",
            Route::PaymentPush => "payment_push",
            Route::GetPaymentChallenge => "get_payment_challenge",
            Route::Jwks => "jwks",
            Route::SandboxJwks => "sandbox_jwks",
            Route::SimulatePaymentAccept => "simulate_payment_accept",
            Route::SimulatePaymentReject => "simulate_payment_reject",
        }
    }

    /// The largest body the route accepts; a larger one is a 413, refused before it is
    /// parsed or copied. The user routes take at most `{"verificationCode": "123456"}`;
    /// Authy's callbacks (an approval request's status, its transaction details and logos,
    /// as Authy documents them) are a few KB.
    pub fn max_body_bytes(self) -> usize {
        match self {
            Route::AuthyCallback => MAX_CALLBACK_BODY_BYTES,
            Route::EnrolPush | Route::UpdateDevicePush => MAX_ENROLMENT_BODY_BYTES,
            _ => MAX_USER_BODY_BYTES,
        }
    }

    pub fn method(self) -> &'static str {
        match self {
            Route::ListFactors
            | Route::ListDeviceChallenges
            | Route::GetStepUpChallenge
            | Route::GetPaymentChallenge
            | Route::Jwks
            | Route::SandboxJwks => "GET",
            Route::UnlinkPush => "DELETE",
            Route::UpdateDevicePush => "PUT",
            _ => "POST",
        }
    }

    /// The path template, as in `openapi.yaml` and `template.yaml`.
    pub fn path_template(self) -> &'static str {
        match self {
            Route::ListFactors => "/authentication_factors",
            Route::EnrolSmsOtp => "/authentication_factors/otp/{channel}",
            Route::VerifySmsOtp => "/authentication_factors/otp/{channel}/verify",
            Route::EnrolPush | Route::UnlinkPush | Route::UpdateDevicePush => {
                "/authentication_factors/push/{channel}"
            }
            Route::VerifyBiometric => "/authentication_factors/push/{channel}/verify",
            Route::ListDeviceChallenges => "/authentication_factors/push/{channel}/challenges",
            Route::AnswerDeviceChallenge => {
                "/authentication_factors/push/{channel}/challenges/{id}"
            }
            Route::SimulatePushAccept => "/simulate/authentication_factors/push/{channel}/accept",
            Route::SimulatePushReject => "/simulate/authentication_factors/push/{channel}/reject",
            Route::AuthyCallback => "/webhooks/authy",
            Route::StepUpSms => "/stepup/challenges/otp/{channel}",
            Route::VerifyStepUpSms => "/stepup/challenges/otp/{channel}/verify",
            Route::StepUpPush => "/stepup/challenges/push/{channel}",
            Route::GetStepUpChallenge => "/stepup/challenges/{id}",
            Route::SimulateStepUpAccept => "/simulate/stepup/challenges/{id}/accept",
            Route::SimulateStepUpReject => "/simulate/stepup/challenges/{id}/reject",
            Route::PaymentSms => "/challenges/otp/{channel}",
            Route::VerifyPaymentSms => "/challenges/{scaChallengeId}/otp/{channel}/verify",
            Route::PaymentPush => "/challenges/push/{channel}",
            Route::GetPaymentChallenge => "/challenges/{scaChallengeId}",
            Route::Jwks => "/.well-known/jwks.json",
            Route::SandboxJwks => "/.well-known/sandbox-jwks.json",
            Route::SimulatePaymentAccept => "/simulate/challenges/{scaChallengeId}/accept",
            Route::SimulatePaymentReject => "/simulate/challenges/{scaChallengeId}/reject",
        }
    }

    /// The route's path parameters, in the order they appear.
    pub fn path_parameters(self) -> Vec<&'static str> {
        self.path_template()
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .collect()
    }
}

/// A route's handler: the Lambda entry point names a function by it
/// (`lambda::run::<ListFactors>()`) and learns its route from here.
pub trait Routed {
    const ROUTE: Route;
}

/// The router table: each route, its handler, and which pipeline runs it (`user` for the
/// routes a programme's app calls, `public` for the two without credentials).
macro_rules! router_table {
    ($($pipeline:ident $route:ident => $handler:ty),* $(,)?) => {
        $(impl Routed for $handler {
            const ROUTE: Route = Route::$route;
        })*

        /// Runs a request on its route's handler, through its pipeline.
        pub(super) async fn serve(
            app: &App,
            route: Route,
            request: &Request,
            deadline: tokio::time::Instant,
        ) -> Result<Reply, ApiError> {
            use super::{public, user};
            match route {
                $(Route::$route => $pipeline::<$handler>(app, route, request, deadline).await,)*
            }
        }
    };
}

router_table!(
    user ListFactors => ListFactors,
    user EnrolSmsOtp => EnrolSmsOtp,
    user VerifySmsOtp => VerifySmsOtp,
    user EnrolPush => EnrolPush,
    user UnlinkPush => UnlinkPush,
    user UpdateDevicePush => UpdateDevicePush,
    user VerifyBiometric => VerifyBiometric,
    user ListDeviceChallenges => ListDeviceChallenges,
    user AnswerDeviceChallenge => AnswerDeviceChallenge,
    user SimulatePushAccept => SimulatePush<true>,
    user SimulatePushReject => SimulatePush<false>,
    public AuthyCallback => AuthyCallback,
    user StepUpSms => StepUpSms,
    user VerifyStepUpSms => VerifyStepUpSms,
    user StepUpPush => StepUpPush,
    user GetStepUpChallenge => GetStepUpChallenge,
    user SimulateStepUpAccept => SimulateStepUp<true>,
    user SimulateStepUpReject => SimulateStepUp<false>,
    user PaymentSms => PaymentSms,
    user VerifyPaymentSms => VerifyPaymentSms,
    user PaymentPush => PaymentPush,
    user GetPaymentChallenge => GetPaymentChallenge,
    public Jwks => Jwks,
    public SandboxJwks => SandboxJwks,
    user SimulatePaymentAccept => SimulatePayment<true>,
    user SimulatePaymentReject => SimulatePayment<false>,
);

/// A matched request: the route and its path parameters' values, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matched {
    pub route: Route,
    pub parameters: Vec<String>,
}

/// Matches a method and path: unknown path → 404, known path with another method → 405.
pub fn match_route(method: &str, path: &str) -> Result<Matched, ApiError> {
    let segments: Vec<&str> = path.strip_prefix('/').unwrap_or("").split('/').collect();
    let (candidates, parameters): (&[Route], Vec<&str>) = match segments.as_slice() {
        ["authentication_factors"] => (&[Route::ListFactors], vec![]),
        ["webhooks", "authy"] => (&[Route::AuthyCallback], vec![]),
        [".well-known", "jwks.json"] => (&[Route::Jwks], vec![]),
        [".well-known", "sandbox-jwks.json"] => (&[Route::SandboxJwks], vec![]),
        ["authentication_factors", "otp", c] => (&[Route::EnrolSmsOtp], vec![c]),
        ["authentication_factors", "otp", c, "verify"] => (&[Route::VerifySmsOtp], vec![c]),
        ["authentication_factors", "push", c] => (
            &[Route::EnrolPush, Route::UnlinkPush, Route::UpdateDevicePush],
            vec![c],
        ),
        ["authentication_factors", "push", c, "verify"] => (&[Route::VerifyBiometric], vec![c]),
        ["authentication_factors", "push", c, "challenges"] => {
            (&[Route::ListDeviceChallenges], vec![c])
        }
        ["authentication_factors", "push", c, "challenges", id] => {
            (&[Route::AnswerDeviceChallenge], vec![c, id])
        }
        ["simulate", "authentication_factors", "push", c, "accept"] => {
            (&[Route::SimulatePushAccept], vec![c])
        }
        ["simulate", "authentication_factors", "push", c, "reject"] => {
            (&[Route::SimulatePushReject], vec![c])
        }
        ["stepup", "challenges", "otp", c] => (&[Route::StepUpSms], vec![c]),
        ["stepup", "challenges", "otp", c, "verify"] => (&[Route::VerifyStepUpSms], vec![c]),
        ["stepup", "challenges", "push", c] => (&[Route::StepUpPush], vec![c]),
        ["stepup", "challenges", id] => (&[Route::GetStepUpChallenge], vec![id]),
        ["simulate", "stepup", "challenges", id, "accept"] => {
            (&[Route::SimulateStepUpAccept], vec![id])
        }
        ["simulate", "stepup", "challenges", id, "reject"] => {
            (&[Route::SimulateStepUpReject], vec![id])
        }
        ["challenges", "otp", c] => (&[Route::PaymentSms], vec![c]),
        ["challenges", "push", c] => (&[Route::PaymentPush], vec![c]),
        ["challenges", id, "otp", c, "verify"] => (&[Route::VerifyPaymentSms], vec![id, c]),
        ["challenges", id] => (&[Route::GetPaymentChallenge], vec![id]),
        ["simulate", "challenges", id, "accept"] => (&[Route::SimulatePaymentAccept], vec![id]),
        ["simulate", "challenges", id, "reject"] => (&[Route::SimulatePaymentReject], vec![id]),
        _ => return Err(ApiError::NotFound),
    };
    if parameters.iter().any(|p| p.is_empty()) {
        return Err(ApiError::NotFound);
    }
    match candidates.iter().find(|r| r.method() == method) {
        Some(route) => Ok(Matched {
            route: *route,
            parameters: parameters.into_iter().map(percent_decode).collect(),
        }),
        None => Err(ApiError::MethodNotAllowed(match candidates {
            [Route::EnrolPush, Route::UnlinkPush, Route::UpdateDevicePush] => "POST, DELETE, PUT",
            // One route on the path: its method, from the route table (not a second list).
            [only] => only.method(),
            _ => "POST",
        })),
    }
}

/// Decodes `%XX` escapes in a path segment (what API Gateway hands a function).
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b, hex) {
            (b'%', Some(decoded)) => {
                out.push(decoded);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_every_route_on_its_method() {
        for route in Route::ALL {
            let path = route
                .path_template()
                .replace("{channel}", "SMS")
                .replace("{id}", "abc")
                .replace("{scaChallengeId}", "abc");
            let matched = match_route(route.method(), &path).ok();
            assert_eq!(matched.map(|m| m.route), Some(route), "{path}");
        }
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        for path in [
            "/",
            "/authentication_factors/",
            "/authentication_factors/otp",
            "/authentication_factors/otp//verify",
            "/nope",
        ] {
            assert!(
                matches!(match_route("GET", path), Err(ApiError::NotFound)),
                "{path}"
            );
        }
        assert!(matches!(
            match_route("POST", "/authentication_factors"),
            Err(ApiError::MethodNotAllowed("GET"))
        ));
        assert!(matches!(
            match_route("GET", "/authentication_factors/push/AUTHY"),
            Err(ApiError::MethodNotAllowed("POST, DELETE, PUT"))
        ));
        assert!(matches!(
            match_route("PUT", "/authentication_factors/otp/SMS/verify"),
            Err(ApiError::MethodNotAllowed("POST"))
        ));
    }

    /// Every path's 405 names exactly the methods its routes answer (the sandbox JWKS was
    /// once missing from a hand-written list, and said `Allow: POST`).
    #[test]
    fn every_405_allows_exactly_the_path_s_methods() {
        for route in Route::ALL {
            let path = route
                .path_template()
                .replace("{channel}", "SMS")
                .replace("{id}", "abc")
                .replace("{scaChallengeId}", "abc");
            let mut methods: Vec<&str> = Route::ALL
                .iter()
                .filter(|other| other.path_template() == route.path_template())
                .map(|other| other.method())
                .collect();
            methods.sort();
            let allowed = match match_route("OPTIONS", &path) {
                Err(ApiError::MethodNotAllowed(allowed)) => allowed,
                other => panic!("{path}: {other:?}"),
            };
            let mut listed: Vec<&str> = allowed.split(", ").collect();
            listed.sort();
            assert_eq!(listed, methods, "{path}");
        }
    }

    #[test]
    fn channel_is_percent_decoded() {
        let m = match_route("POST", "/authentication_factors/otp/S%4DS").ok();
        assert_eq!(m.map(|m| m.parameters), Some(vec!["SMS".to_owned()]));
    }
}
