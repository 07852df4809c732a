//! Requests as API Gateway hands them to the functions, and the answers the tests read.

use lambda_http::{http::HeaderMap, Body};
use serde_json::{json, Value};

/// A request under construction.
pub struct Req {
    pub(super) method: &'static str,
    pub(super) path: String,
    pub(super) headers: Vec<(String, Vec<u8>)>,
    pub(super) body: Option<Vec<u8>>,
}

impl Req {
    pub fn new(method: &'static str, path: &str) -> Self {
        Self {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: None,
        }
    }
    pub fn get(path: &str) -> Self {
        Self::new("GET", path)
    }
    pub fn post(path: &str) -> Self {
        Self::new("POST", path)
    }
    pub fn put(path: &str) -> Self {
        Self::new("PUT", path)
    }
    pub fn delete(path: &str) -> Self {
        Self::new("DELETE", path)
    }
    pub fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }
    pub fn key(self, api_key: &str) -> Self {
        self.header("api-key", api_key)
    }
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", format!("Bearer {token}"))
    }
    /// Both credentials.
    pub fn auth(self, api_key: &str, token: &str) -> Self {
        self.key(api_key).bearer(token)
    }
    pub fn idem(self, reference: &str) -> Self {
        self.header("idempotency-ref", reference)
    }
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = Some(body.as_ref().to_vec());
        self
    }
    pub fn json(self, value: Value) -> Self {
        self.body(value.to_string())
    }
}

/// A response, its body parsed (`Null` when empty).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub raw: String,
}

impl From<lambda_http::Response<Body>> for Resp {
    fn from(response: lambda_http::Response<Body>) -> Self {
        let (parts, body) = response.into_parts();
        let raw = String::from_utf8_lossy(body.as_ref()).into_owned();
        let body = if raw.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&raw).expect("body is JSON")
        };
        Self {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body,
            raw,
        }
    }
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn error_code(&self) -> &str {
        self.body["errorCode"].as_str().unwrap_or("")
    }
    /// `(fieldName, error, params)` of every invalid field.
    pub fn fields(&self) -> Vec<(String, String, Vec<String>)> {
        self.body["syntaxErrors"]["invalidFields"]
            .as_array()
            .map(|fields| {
                fields
                    .iter()
                    .map(|f| {
                        let params = f["params"]
                            .as_array()
                            .map(|p| p.iter().map(|x| x.as_str().unwrap().to_owned()).collect())
                            .unwrap_or_default();
                        (
                            f["fieldName"].as_str().unwrap().to_owned(),
                            f["error"].as_str().unwrap().to_owned(),
                            params,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    #[track_caller]
    pub fn assert(&self, status: u16) -> &Self {
        assert_eq!(self.status, status, "body: {}", self.raw);
        assert!(
            self.header("request-ref").is_some_and(|r| !r.is_empty()),
            "no request-ref"
        );
        if self.raw.is_empty() {
            assert!(self.header("content-type").is_none());
        } else {
            assert_eq!(self.header("content-type"), Some("application/json"));
        }
        self
    }
    #[track_caller]
    pub fn assert_conflict(&self, code: &str) -> &Self {
        self.assert(409);
        assert_eq!(self.body, json!({ "errorCode": code }));
        self
    }
    #[track_caller]
    pub fn assert_field(&self, field: &str, error: &str, params: &[&str]) -> &Self {
        self.assert(400);
        let expected = (
            field.to_owned(),
            error.to_owned(),
            params.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        );
        assert!(
            self.fields().contains(&expected),
            "{expected:?} not in {}",
            self.raw
        );
        assert!(self.body["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty() && m.len() <= 255));
        self
    }
}

// Paths of the API.
