//! The API's documentation, served by the local server: the spec as written
//! (`/openapi.yaml`), as JSON (`/openapi.json`), and a page that renders it (`/docs`) with no
//! network access beyond this server (no CDN, no web font). Not routes of the API: no Lambda
//! function serves them.

use bytes::Bytes;
use http_body_util::Full;

/// The spec, compiled in: the page always documents the server that serves it.
const SPEC_YAML: &str = include_str!("../../openapi.yaml");
const PAGE: &str = include_str!("docs.html");

/// The documentation's answer for `path`, if it is one of its paths (GET or HEAD only).
pub fn answer(method: &hyper::Method, path: &str) -> Option<hyper::Response<Full<Bytes>>> {
    let (content_type, body) = match path {
        "/docs" | "/docs/" => (
            "text/html; charset=utf-8",
            Bytes::from_static(PAGE.as_bytes()),
        ),
        "/openapi.yaml" => (
            "application/yaml; charset=utf-8",
            Bytes::from_static(SPEC_YAML.as_bytes()),
        ),
        "/openapi.json" => ("application/json", Bytes::from(spec_json())),
        _ => return None,
    };
    if method != hyper::Method::GET && method != hyper::Method::HEAD {
        return Some(
            hyper::Response::builder()
                .status(405)
                .header("allow", "GET")
                .body(Full::new(Bytes::new()))
                .unwrap_or_default(),
        );
    }
    Some(
        hyper::Response::builder()
            .status(200)
            .header("content-type", content_type)
            // The page loads nothing from anywhere else.
            .header(
                "content-security-policy",
                "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'",
            )
            .body(Full::new(body))
            .unwrap_or_default(),
    )
}

/// The spec as JSON, converted once.
fn spec_json() -> String {
    static JSON: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    JSON.get_or_init(|| {
        serde_yaml::from_str::<serde_json::Value>(SPEC_YAML)
            .map(|spec| spec.to_string())
            .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()}).to_string())
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_converts_to_json_with_every_path() {
        let spec: serde_json::Value = serde_json::from_str(&spec_json()).unwrap_or_default();
        assert_eq!(spec["openapi"], "3.1.0");
        assert!(spec["paths"]["/authentication_factors"]["get"].is_object());
        assert!(spec["webhooks"].is_object());
    }

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for outside in ["http://", "https://", "//cdn", "@import"] {
            assert!(!PAGE.contains(outside), "{outside}");
        }
        assert!(PAGE.contains("fetch(\"/openapi.json\")"));
    }
}
