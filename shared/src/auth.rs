//! Who is calling: the programme (by `api-key`) and the user (by the bearer JWT).
//!
//! Every failure is the same empty 401, so a caller learns nothing about which check failed.
//! The token's `exp` and `nbf` are checked against the request's clock (a parameter), with a
//! leeway of 30 s; the algorithm must be one a configured key allows, so `none` and HS/RS
//! confusion are refused before any signature is computed.

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use crate::domain::phone::{PhoneNumber, TokenPhone};

/// Clock skew tolerated on `exp` and `nbf` (the contract allows at most 60 s).
pub const LEEWAY_SECS: i64 = 30;

/// The longest a token may live (`exp` − `iat`): a token minted to outlive a day (by a
/// leaked key, or a misconfigured identity service) is refused whatever its signature.
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 24 * 3_600;

/// How long a rotated-out HS256 key keeps verifying the tokens it signed before the rotation.
pub const PREVIOUS_KEY_GRACE_SECS: i64 = 24 * 3_600;

/// The longest `sub` accepted (it becomes part of a store key).
const MAX_SUBJECT_LEN: usize = 256;

/// A token longer than this is refused without being decoded.
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The user behind a verified token.
#[derive(Debug, Clone)]
pub struct TokenUser {
    pub credential_id: String,
    pub programme_id: String,
    /// The token's `phone_number`, parsed once.
    pub phone: TokenPhone<PhoneNumber>,
    /// When `amr` contains `mfa`: the token's `auth_time`, else its `iat` (when the user
    /// proved the second factor). `None` without `mfa`, or with neither time.
    pub mfa_at: Option<i64>,
    /// The session a step-up is granted to: the `sid` claim, else the token itself.
    pub session: crate::domain::step_up::SessionId,
    /// The token's `exp` (whole seconds): a step-up it proves never outlives it.
    pub exp: i64,
}

/// Why a token was refused (logged, never answered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the Authorization header is missing or not 'Bearer <token>'")]
    Header,
    #[error("the token is malformed, uses a refused algorithm, or its signature is wrong")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("a required claim is missing or malformed")]
    Claims,
    #[error("the token lives longer than 24 hours")]
    Lifetime,
    #[error("the token was signed by a rotated-out key after its rotation, or past its grace")]
    RotatedOut,
}

/// The keys the identity service signs with, and what its tokens must say.
pub struct TokenVerifier {
    /// Each key with its algorithm and, from a JWKS, its `kid`.
    keys: Vec<TokenKey>,
    issuer: String,
    audience: String,
    /// The claim that must hold `audience`: `aud` (RFC 7519), or `client_id` (Amazon
    /// Cognito's access tokens carry no `aud`).
    audience_claim: AudienceClaim,
}

/// Which claim names the API a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AudienceClaim {
    #[default]
    Aud,
    ClientId,
}

impl AudienceClaim {
    /// `aud` or `client_id` (`JWT_AUDIENCE_CLAIM`).
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "aud" => Some(Self::Aud),
            "client_id" => Some(Self::ClientId),
            _ => None,
        }
    }
}

struct TokenKey {
    alg: Algorithm,
    kid: Option<String>,
    key: DecodingKey,
    /// A rotated-out key: when the key replacing it was made. It verifies only tokens issued
    /// before then, and only for `PREVIOUS_KEY_GRACE_SECS` after it.
    rotated_out_at: Option<i64>,
}

#[derive(Deserialize)]
struct Claims {
    sub: String,
    exp: f64,
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    programme_id: Option<serde_json::Value>,
    #[serde(default)]
    phone_number: Option<serde_json::Value>,
    #[serde(default)]
    amr: Option<serde_json::Value>,
    #[serde(default)]
    iat: Option<serde_json::Value>,
    #[serde(default)]
    auth_time: Option<serde_json::Value>,
    #[serde(default)]
    sid: Option<serde_json::Value>,
    #[serde(default)]
    client_id: Option<serde_json::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("JWT_PUBLIC_KEY_ALG must be RS256, ES256 or EdDSA")]
    Algorithm,
    #[error("the public key could not be read: {0}")]
    Pem(#[from] jsonwebtoken::errors::Error),
    #[error("no token key is configured (JWT_HS256_SECRET, JWT_PUBLIC_KEY_PEM or a JWKS)")]
    None,
    #[error("the JWKS could not be read: {0}")]
    Jwks(String),
}

impl TokenVerifier {
    /// `hs256_secret` and/or one public key (`alg` RS256, ES256 or EdDSA, PEM).
    pub fn new(
        hs256_secret: Option<&[u8]>,
        public_key: Option<(&str, &str)>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Result<Self, KeyError> {
        let mut verifier = Self::refusing(issuer, audience);
        if let Some(secret) = hs256_secret {
            verifier = verifier.with_hs256(secret);
        }
        if let Some((alg, pem)) = public_key {
            let (alg, key) = match alg {
                "RS256" => (Algorithm::RS256, DecodingKey::from_rsa_pem(pem.as_bytes())?),
                "ES256" => (Algorithm::ES256, DecodingKey::from_ec_pem(pem.as_bytes())?),
                "EdDSA" => (Algorithm::EdDSA, DecodingKey::from_ed_pem(pem.as_bytes())?),
                _ => return Err(KeyError::Algorithm),
            };
            verifier.keys.push(TokenKey {
                alg,
                kid: None,
                key,
                rotated_out_at: None,
            });
        }
        if verifier.keys.is_empty() {
            return Err(KeyError::None);
        }
        Ok(verifier)
    }

    /// A verifier with no key: every token is refused (the functions whose routes take no
    /// user token: the JWKS and Authy's callback).
    pub fn refusing(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            keys: Vec::new(),
            issuer: issuer.into(),
            audience: audience.into(),
            audience_claim: AudienceClaim::Aud,
        }
    }

    /// Whether any token can be verified.
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Also accepts tokens signed with this HS256 key.
    pub fn with_hs256(mut self, secret: &[u8]) -> Self {
        self.keys.push(TokenKey {
            alg: Algorithm::HS256,
            kid: None,
            key: DecodingKey::from_secret(secret),
            rotated_out_at: None,
        });
        self
    }

    /// Also accepts, for a while, tokens signed with the HS256 key a rotation replaced at
    /// `rotated_at` (unix seconds): only tokens whose `iat` is at or before the rotation, and
    /// only until `PREVIOUS_KEY_GRACE_SECS` after it. A leaked key stops minting tokens the
    /// moment it is rotated out, and stops verifying anything a day later.
    pub fn with_previous_hs256(mut self, secret: &[u8], rotated_at: i64) -> Self {
        self.keys.push(TokenKey {
            alg: Algorithm::HS256,
            kid: None,
            key: DecodingKey::from_secret(secret),
            rotated_out_at: Some(rotated_at),
        });
        self
    }

    /// Also accepts tokens signed by the public keys of a JWKS document (RS256, ES256 or
    /// EdDSA; a token with a `kid` is checked only against the key with that `kid`). Keys of
    /// other kinds (symmetric, other curves) are skipped; a JWKS without a usable key is an
    /// error.
    pub fn with_jwks(mut self, jwks: &str) -> Result<Self, KeyError> {
        use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
        let set: JwkSet = serde_json::from_str(jwks).map_err(|e| KeyError::Jwks(e.to_string()))?;
        let before = self.keys.len();
        for jwk in &set.keys {
            let alg = match (&jwk.common.key_algorithm, &jwk.algorithm) {
                (Some(KeyAlgorithm::RS256), AlgorithmParameters::RSA(_))
                | (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
                (Some(KeyAlgorithm::ES256), AlgorithmParameters::EllipticCurve(p))
                | (None, AlgorithmParameters::EllipticCurve(p))
                    if p.curve == EllipticCurve::P256 =>
                {
                    Algorithm::ES256
                }
                (Some(KeyAlgorithm::EdDSA), AlgorithmParameters::OctetKeyPair(p))
                | (None, AlgorithmParameters::OctetKeyPair(p))
                    if p.curve == EllipticCurve::Ed25519 =>
                {
                    Algorithm::EdDSA
                }
                _ => continue,
            };
            let key = DecodingKey::from_jwk(jwk)?;
            self.keys.push(TokenKey {
                alg,
                kid: jwk.common.key_id.clone(),
                key,
                rotated_out_at: None,
            });
        }
        if self.keys.len() == before {
            return Err(KeyError::Jwks("no RS256, ES256 or EdDSA key".into()));
        }
        Ok(self)
    }

    /// Checks the audience in `claim` instead of `aud` (Amazon Cognito: `client_id`).
    pub fn with_audience_claim(mut self, claim: AudienceClaim) -> Self {
        self.audience_claim = claim;
        self
    }

    /// Whether a bearer token names a `kid` none of the keys has, while some key has one (a
    /// JWKS): the identity service may have added a key since the JWKS was fetched, which one
    /// early refetch finds (`lambda`, at most once a minute). Reads only the token's header.
    pub fn names_unknown_kid(&self, authorization: Option<&[u8]>) -> bool {
        let Some(token) = bearer(authorization) else {
            return false;
        };
        let Some(kid) = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid) else {
            return false;
        };
        self.keys.iter().any(|k| k.kid.is_some())
            && !self
                .keys
                .iter()
                .any(|k| k.kid.as_deref() == Some(kid.as_str()))
    }

    /// Whether the HS256 key a rotation replaced (at `rotated_at`, unix seconds) may be the one
    /// that signed this token, so that it is worth fetching: an HS256 token whose signature no
    /// key held now verifies, issued (`iat`, unverified) at or before the rotation, within the
    /// day after it in which that key still verifies.
    pub fn may_need_previous_key(
        &self,
        authorization: Option<&[u8]>,
        rotated_at: i64,
        now: i64,
    ) -> bool {
        use base64::Engine as _;
        let Some(token) = bearer(authorization) else {
            return false;
        };
        let hs256 = jsonwebtoken::decode_header(token).is_ok_and(|h| h.alg == Algorithm::HS256);
        if !hs256
            || now >= rotated_at + PREVIOUS_KEY_GRACE_SECS
            || !matches!(self.verify(authorization, now), Err(TokenError::Signature))
        {
            return false;
        }
        let iat = token
            .split('.')
            .nth(1)
            .and_then(|payload| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(payload)
                    .ok()
            })
            .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
            .and_then(|claims| claims.get("iat").and_then(serde_json::Value::as_i64));
        iat.is_some_and(|iat| iat <= rotated_at)
    }

    /// Verifies an `Authorization` header value at `now`.
    pub fn verify(&self, authorization: Option<&[u8]>, now: i64) -> Result<TokenUser, TokenError> {
        let header = authorization.ok_or(TokenError::Header)?;
        let token = header.strip_prefix(b"Bearer ").ok_or(TokenError::Header)?;
        if token.is_empty()
            || token.len() > MAX_TOKEN_LEN
            || !token.iter().all(|b| b.is_ascii_graphic())
        {
            return Err(TokenError::Header);
        }
        let token = std::str::from_utf8(token).map_err(|_| TokenError::Header)?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Signature)?;
        let mut validation = Validation::new(header.alg);
        // exp and nbf are checked below against the request's clock, not the system's.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_issuer(&[&self.issuer]);
        match self.audience_claim {
            AudienceClaim::Aud => {
                validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
                validation.set_audience(&[&self.audience]);
            }
            // Checked below, once the signature holds.
            AudienceClaim::ClientId => {
                validation.set_required_spec_claims(&["exp", "iss", "sub"]);
                validation.validate_aud = false;
            }
        }
        // Every key that may have signed it (the current and the previous HS256 key; the
        // JWKS key with its kid), until one verifies the signature.
        let mut outcome = Err(TokenError::Signature);
        let mut by_rotated_out = None;
        for candidate in self.keys.iter().filter(|k| {
            k.alg == header.alg
                && match (&header.kid, &k.kid) {
                    (Some(wanted), Some(kid)) => wanted == kid,
                    _ => true,
                }
        }) {
            outcome =
                jsonwebtoken::decode::<Claims>(token, &candidate.key, &validation).map_err(|e| {
                    match e.kind() {
                        jsonwebtoken::errors::ErrorKind::InvalidSignature
                        | jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
                        | jsonwebtoken::errors::ErrorKind::InvalidToken => TokenError::Signature,
                        _ => TokenError::Claims,
                    }
                });
            if !matches!(outcome, Err(TokenError::Signature)) {
                by_rotated_out = candidate.rotated_out_at;
                break;
            }
        }
        let claims = outcome?.claims;
        if self.audience_claim == AudienceClaim::ClientId
            && claims
                .client_id
                .as_ref()
                .and_then(serde_json::Value::as_str)
                != Some(self.audience.as_str())
        {
            return Err(TokenError::Claims);
        }
        let time = |claim: &Option<serde_json::Value>| {
            claim
                .as_ref()
                .and_then(serde_json::Value::as_f64)
                .filter(|t| t.is_finite())
                .map(|t| t as i64)
        };
        let iat = time(&claims.iat);
        // No token lives longer than a day; one without `iat` may not run past a day from now.
        let lifetime = claims.exp as i64 - iat.unwrap_or(now);
        if lifetime > MAX_TOKEN_LIFETIME_SECS {
            return Err(TokenError::Lifetime);
        }
        if let Some(rotated_at) = by_rotated_out {
            let issued_before = iat.is_some_and(|iat| iat <= rotated_at);
            if !issued_before || now > rotated_at + PREVIOUS_KEY_GRACE_SECS {
                return Err(TokenError::RotatedOut);
            }
        }
        let now = now as f64;
        if now - LEEWAY_SECS as f64 >= claims.exp {
            return Err(TokenError::Expired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| now + (LEEWAY_SECS as f64) < nbf)
        {
            return Err(TokenError::NotYetValid);
        }
        if claims.sub.is_empty() || claims.sub.len() > MAX_SUBJECT_LEN {
            return Err(TokenError::Claims);
        }
        let Some(serde_json::Value::String(programme_id)) = claims.programme_id else {
            return Err(TokenError::Claims);
        };
        let phone = match claims.phone_number {
            None | Some(serde_json::Value::Null) => TokenPhone::Absent,
            Some(serde_json::Value::String(raw)) => {
                PhoneNumber::parse(&raw).map_or(TokenPhone::Invalid, TokenPhone::Valid)
            }
            Some(_) => TokenPhone::Invalid,
        };
        let mfa = match claims.amr {
            Some(serde_json::Value::Array(methods)) => {
                methods.iter().any(|m| m.as_str() == Some("mfa"))
            }
            _ => false,
        };
        let mfa_at = if mfa {
            time(&claims.auth_time).or(iat)
        } else {
            None
        };
        let sid = match &claims.sid {
            Some(serde_json::Value::String(sid)) if !sid.is_empty() => Some(sid.as_str()),
            _ => None,
        };
        Ok(TokenUser {
            session: crate::domain::step_up::SessionId::of_token(sid, token),
            exp: claims.exp as i64,
            credential_id: claims.sub,
            programme_id,
            phone,
            mfa_at,
        })
    }
}

/// The token of a `Bearer` header, for the checks that read it before (or beside) `verify`.
fn bearer(authorization: Option<&[u8]>) -> Option<&str> {
    authorization
        .and_then(|h| h.strip_prefix(b"Bearer "))
        .filter(|t| t.len() <= MAX_TOKEN_LEN)
        .and_then(|t| std::str::from_utf8(t).ok())
}

/// Signs an HS256 token: for the local server's demo token, the operator tool's development
/// tokens and the tests. Production tokens come from the platform's identity service.
pub fn mint_hs256(
    secret: &[u8],
    claims: &serde_json::Value,
) -> Result<String, jsonwebtoken::errors::Error> {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_800_000_000;
    const CURRENT: &[u8] = b"the-current-key-at-least-32-bytes-long";
    const PREVIOUS: &[u8] = b"the-previous-key-at-least-32-bytes-long";

    fn token(key: &[u8], iat: Option<i64>, exp: i64) -> String {
        let mut claims =
            json!({"sub": "u1", "programme_id": "p1", "iss": "i", "aud": "a", "exp": exp});
        if let Some(iat) = iat {
            claims["iat"] = json!(iat);
        }
        format!("Bearer {}", mint_hs256(key, &claims).unwrap())
    }

    #[test]
    fn the_previous_key_is_wanted_only_for_a_token_it_may_have_signed() {
        let rotated_at = NOW - 3_600;
        let current = TokenVerifier::new(Some(CURRENT), None, "i", "a").unwrap();
        let wants = |key: &[u8], iat: i64, now: i64| {
            let token = token(key, Some(iat), iat + 3_600);
            current.may_need_previous_key(Some(token.as_bytes()), rotated_at, now)
        };
        // Signed before the rotation by a key the function does not hold: fetch it.
        assert!(wants(PREVIOUS, rotated_at - 60, NOW));
        // The current key verifies it; issued after the rotation; past the day after it.
        assert!(!wants(CURRENT, rotated_at - 60, NOW));
        assert!(!wants(PREVIOUS, rotated_at + 60, NOW));
        assert!(!wants(
            PREVIOUS,
            rotated_at - 60,
            rotated_at + PREVIOUS_KEY_GRACE_SECS
        ));
        assert!(!current.may_need_previous_key(Some(b"Bearer junk"), rotated_at, NOW));
        assert!(!current.may_need_previous_key(None, rotated_at, NOW));
    }

    fn verify(verifier: &TokenVerifier, token: &str, now: i64) -> Result<TokenUser, TokenError> {
        verifier.verify(Some(token.as_bytes()), now)
    }

    #[test]
    fn a_cognito_access_token_names_its_audience_in_client_id() {
        let cognito = TokenVerifier::new(Some(CURRENT), None, "i", "app-client")
            .unwrap()
            .with_audience_claim(AudienceClaim::ClientId);
        let mint =
            |claims: serde_json::Value| format!("Bearer {}", mint_hs256(CURRENT, &claims).unwrap());
        let base = json!({"sub": "u1", "programme_id": "p1", "iss": "i", "exp": NOW + 600,
                          "token_use": "access"});
        let mut right = base.clone();
        right["client_id"] = json!("app-client");
        assert!(verify(&cognito, &mint(right), NOW).is_ok());
        let mut other = base.clone();
        other["client_id"] = json!("another-client");
        assert!(matches!(
            verify(&cognito, &mint(other), NOW),
            Err(TokenError::Claims)
        ));
        assert!(matches!(
            verify(&cognito, &mint(base.clone()), NOW),
            Err(TokenError::Claims)
        ));
        // The default still wants aud, and client_id alone does not pass for it.
        let plain = TokenVerifier::new(Some(CURRENT), None, "i", "app-client").unwrap();
        let mut only_client = base;
        only_client["client_id"] = json!("app-client");
        assert!(verify(&plain, &mint(only_client), NOW).is_err());
        assert_eq!(
            AudienceClaim::parse("client_id"),
            Some(AudienceClaim::ClientId)
        );
        assert_eq!(AudienceClaim::parse("azp"), None);
    }

    #[test]
    fn a_token_naming_an_unknown_kid_is_worth_one_refetch_only_against_a_jwks() {
        let hs = TokenVerifier::new(Some(CURRENT), None, "i", "a").unwrap();
        let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
        header.kid = Some("k2".into());
        let with_kid = jsonwebtoken::encode(
            &header,
            &json!({"sub": "u1", "iss": "i", "aud": "a", "exp": NOW + 60}),
            &jsonwebtoken::EncodingKey::from_secret(CURRENT),
        )
        .unwrap();
        let bearer = format!("Bearer {with_kid}");
        // No JWKS key (no key has a kid): nothing to refetch.
        assert!(!hs.names_unknown_kid(Some(bearer.as_bytes())));
        assert!(!hs.names_unknown_kid(None));
        assert!(!hs.names_unknown_kid(Some(b"Bearer not-a-jwt")));
    }

    #[test]
    fn no_token_lives_longer_than_a_day() {
        let v = TokenVerifier::new(Some(CURRENT), None, "i", "a").unwrap();
        assert!(verify(&v, &token(CURRENT, Some(NOW), NOW + 86_400), NOW).is_ok());
        assert_eq!(
            verify(&v, &token(CURRENT, Some(NOW), NOW + 86_401), NOW).unwrap_err(),
            TokenError::Lifetime
        );
        // Issued long ago, expiring soon: still a 3-day token.
        assert_eq!(
            verify(&v, &token(CURRENT, Some(NOW - 3 * 86_400), NOW + 60), NOW).unwrap_err(),
            TokenError::Lifetime
        );
        // Without iat: it may not run past a day from now.
        assert!(verify(&v, &token(CURRENT, None, NOW + 3_600), NOW).is_ok());
        assert_eq!(
            verify(&v, &token(CURRENT, None, NOW + 86_401), NOW).unwrap_err(),
            TokenError::Lifetime
        );
    }

    #[test]
    fn a_rotated_out_key_verifies_only_what_it_signed_before_and_for_a_day() {
        let rotated_at = NOW;
        let v = TokenVerifier::new(Some(CURRENT), None, "i", "a")
            .unwrap()
            .with_previous_hs256(PREVIOUS, rotated_at);
        // Signed before the rotation: verifies, within the day after it.
        let before = token(PREVIOUS, Some(rotated_at - 60), rotated_at + 3_000);
        assert!(verify(&v, &before, rotated_at + 10).is_ok());
        assert!(verify(
            &v,
            &token(PREVIOUS, Some(rotated_at), rotated_at + 600),
            NOW
        )
        .is_ok());
        // Signed after it (a leaked key minting tokens): refused.
        let after = token(PREVIOUS, Some(rotated_at + 1), rotated_at + 600);
        assert_eq!(
            verify(&v, &after, rotated_at + 2).unwrap_err(),
            TokenError::RotatedOut
        );
        // Without iat, nothing shows it was signed before: refused.
        let undated = token(PREVIOUS, None, rotated_at + 600);
        assert_eq!(
            verify(&v, &undated, rotated_at + 2).unwrap_err(),
            TokenError::RotatedOut
        );
        // A day after the rotation, the previous key verifies nothing.
        let late = token(PREVIOUS, Some(rotated_at + 86_000), rotated_at + 86_600);
        let v_late = TokenVerifier::new(Some(CURRENT), None, "i", "a")
            .unwrap()
            .with_previous_hs256(PREVIOUS, rotated_at + 86_000);
        assert!(verify(&v_late, &late, rotated_at + 86_001).is_ok());
        assert_eq!(
            verify(&v, &before, rotated_at + 86_401).unwrap_err(),
            TokenError::RotatedOut
        );
        // The current key is not bounded by the rotation.
        assert!(verify(&v, &token(CURRENT, Some(NOW + 100), NOW + 700), NOW + 200).is_ok());
    }
}
