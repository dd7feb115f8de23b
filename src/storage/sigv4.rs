//! AWS Signature Version 4 for S3 requests, as described in the S3 API reference
//! ("Authenticating Requests: Using the Authorization Header"): the request is reduced to a
//! canonical form, hashed, and signed with a key derived from the secret, the day, the
//! region and the service.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::secrets::Secret;

/// The hash of an empty payload.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Secret,
}

/// What is signed of a request. `path` and `query` are already in canonical (encoded) form
/// and are sent exactly so; `headers` are the headers to sign besides `host`,
/// `x-amz-content-sha256` and `x-amz-date`, which the signature adds.
pub struct Request<'a> {
    pub method: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub payload_sha256: &'a str,
}

/// The headers to send with a signed request: `x-amz-date`, `x-amz-content-sha256` and
/// `authorization`.
pub struct Signed {
    pub amz_date: String,
    pub content_sha256: String,
    pub authorization: String,
}

pub fn sign(
    request: &Request<'_>,
    credentials: &Credentials,
    region: &str,
    service: &str,
    now: DateTime<Utc>,
) -> Signed {
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let day = now.format("%Y%m%d").to_string();

    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    headers.push(("host".into(), request.host.to_string()));
    headers.push((
        "x-amz-content-sha256".into(),
        request.payload_sha256.to_string(),
    ));
    headers.push(("x-amz-date".into(), amz_date.clone()));
    headers.sort();
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");

    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        request.method, request.path, request.query, request.payload_sha256
    );
    let scope = format!("{day}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );

    let mut secret = b"AWS4".to_vec();
    secret.extend_from_slice(credentials.secret_access_key.expose());
    let key = hmac(&secret, day.as_bytes());
    let key = hmac(&key, region.as_bytes());
    let key = hmac(&key, service.as_bytes());
    let key = hmac(&key, b"aws4_request");
    let signature = hex::encode(hmac(&key, string_to_sign.as_bytes()));

    Signed {
        amz_date,
        content_sha256: request.payload_sha256.to_string(),
        authorization: format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            credentials.access_key_id
        ),
    }
}

/// HMAC-SHA-256 (RFC 2104).
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(data);
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// Encodes one path segment the way S3 expects: unreserved characters as they are,
/// every other byte as `%XX`.
pub fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Encodes a path of `/`-separated segments.
pub fn encode_path(path: &str) -> String {
    path.split('/')
        .map(encode_segment)
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// The "GET Object" example of the S3 API reference (signature calculations for the
    /// Authorization header), with its published signature.
    #[test]
    fn matches_the_published_get_object_example() {
        let credentials = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_access_key: Secret::new(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_vec()),
        };
        let now = Utc.with_ymd_and_hms(2013, 5, 24, 0, 0, 0).unwrap();
        let signed = sign(
            &Request {
                method: "GET",
                host: "examplebucket.s3.amazonaws.com",
                path: "/test.txt",
                query: "",
                headers: &[("Range", "bytes=0-9")],
                payload_sha256: EMPTY_SHA256,
            },
            &credentials,
            "us-east-1",
            "s3",
            now,
        );
        assert_eq!(signed.amz_date, "20130524T000000Z");
        assert_eq!(
            signed.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn encodes_paths_per_segment() {
        assert_eq!(encode_path("a b/c+d/é~_.-"), "a%20b/c%2Bd/%C3%A9~_.-");
        assert_eq!(encode_segment("x/y"), "x%2Fy");
    }
}
