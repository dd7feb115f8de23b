//! Objects in a bucket of an S3-compatible service (Amazon S3, MinIO, Ceph RGW, Cloudflare
//! R2 and the like), through its REST API with Signature Version 4.

use std::io;
use std::time::Duration;

use chrono::Utc;
use reqwest::{Method, StatusCode, Url};

use super::S3Config;
use super::sigv4::{self, Credentials, EMPTY_SHA256};

pub struct S3Store {
    http: reqwest::Client,
    /// `scheme://host[:port]` followed by `/bucket` in path style, or by nothing when the
    /// bucket is part of the host name.
    base: Url,
    host: String,
    /// The path of the bucket: `/bucket` in path style, empty otherwise.
    bucket_path: String,
    prefix: String,
    region: String,
    credentials: Credentials,
    bucket: String,
}

impl S3Store {
    pub fn new(config: &S3Config) -> io::Result<S3Store> {
        let endpoint = Url::parse(&config.endpoint)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("endpoint: {e}")))?;
        let endpoint_host = endpoint.host_str().unwrap_or_default().to_string();
        let (host_name, bucket_path) = if config.path_style {
            (
                endpoint_host,
                format!("/{}", sigv4::encode_segment(&config.bucket)),
            )
        } else {
            (format!("{}.{endpoint_host}", config.bucket), String::new())
        };
        let host = match endpoint.port() {
            Some(port) => format!("{host_name}:{port}"),
            None => host_name,
        };
        let base = Url::parse(&format!("{}://{host}", endpoint.scheme()))
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("endpoint: {e}")))?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(io::Error::other)?;
        Ok(S3Store {
            http,
            base,
            host,
            bucket_path,
            prefix: config.prefix.clone(),
            region: config.region.clone(),
            credentials: Credentials {
                access_key_id: config.access_key_id.clone(),
                secret_access_key: config.secret_access_key.clone(),
            },
            bucket: config.bucket.clone(),
        })
    }

    /// Where the objects go, for the start-up log.
    pub fn describe(&self) -> String {
        format!("bucket {} at {}", self.bucket, self.base)
    }

    fn object_path(&self, key: &str) -> String {
        format!(
            "{}/{}",
            self.bucket_path,
            sigv4::encode_path(&format!("{}{key}", self.prefix))
        )
    }

    /// Sends one signed request and returns the status and body.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&[u8], &str)>,
    ) -> io::Result<(StatusCode, Vec<u8>)> {
        let payload_sha256 = body.map_or(EMPTY_SHA256, |(_, sha256)| sha256);
        let signed = sigv4::sign(
            &sigv4::Request {
                method: method.as_str(),
                host: &self.host,
                path,
                query: "",
                headers: &[],
                payload_sha256,
            },
            &self.credentials,
            &self.region,
            "s3",
            Utc::now(),
        );
        let mut url = self.base.clone();
        url.set_path(path);
        let mut request = self
            .http
            .request(method, url)
            .header("x-amz-date", signed.amz_date)
            .header("x-amz-content-sha256", signed.content_sha256)
            .header("authorization", signed.authorization);
        if let Some((bytes, _)) = body {
            request = request.body(bytes.to_vec());
        }
        let response = request.send().await.map_err(|e| {
            // Without the URL: the error names only what went wrong.
            io::Error::other(format!("S3 request failed: {}", e.without_url()))
        })?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| io::Error::other(format!("S3 answer unread: {}", e.without_url())))?;
        Ok((status, body.to_vec()))
    }

    /// Writes an object; `sha256` is the hex digest of `bytes`, signed with the request so
    /// the service refuses bytes altered on the way.
    pub async fn put(&self, key: &str, bytes: &[u8], sha256: &str) -> io::Result<()> {
        let (status, body) = self
            .send(Method::PUT, &self.object_path(key), Some((bytes, sha256)))
            .await?;
        expect_success("PutObject", status, &body)
    }

    pub async fn get(&self, key: &str) -> io::Result<Vec<u8>> {
        let (status, body) = self.send(Method::GET, &self.object_path(key), None).await?;
        if status == StatusCode::NOT_FOUND {
            return Err(io::Error::new(io::ErrorKind::NotFound, "no such object"));
        }
        expect_success("GetObject", status, &body)?;
        Ok(body)
    }

    /// Removes an object; one already gone is not an error.
    pub async fn delete(&self, key: &str) -> io::Result<()> {
        let (status, body) = self
            .send(Method::DELETE, &self.object_path(key), None)
            .await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(());
        }
        expect_success("DeleteObject", status, &body)
    }

    /// Checks that the bucket exists and the credentials are accepted.
    pub async fn check(&self) -> io::Result<()> {
        let path = if self.bucket_path.is_empty() {
            "/".to_string()
        } else {
            self.bucket_path.clone()
        };
        let (status, body) = self.send(Method::HEAD, &path, None).await?;
        match status {
            StatusCode::NOT_FOUND => Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("the bucket {} does not exist", self.bucket),
            )),
            StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "the credentials were refused for the bucket {} ({status})",
                    self.bucket
                ),
            )),
            _ => expect_success("HeadBucket", status, &body),
        }
    }
}

/// A 2xx answer, or an error naming the operation, the status and S3's error code (never
/// the rest of the answer).
fn expect_success(operation: &str, status: StatusCode, body: &[u8]) -> io::Result<()> {
    if status.is_success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(body);
    let code = text
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code)
        .filter(|code| code.len() <= 64 && code.chars().all(|c| c.is_ascii_alphanumeric()));
    Err(io::Error::other(match code {
        Some(code) => format!("S3 {operation} answered {status} ({code})"),
        None => format!("S3 {operation} answered {status}"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_only_the_code() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code>\
                     <StringToSign>AWS4-HMAC-SHA256...</StringToSign></Error>";
        let e = expect_success("PutObject", StatusCode::FORBIDDEN, body).unwrap_err();
        assert_eq!(
            e.to_string(),
            "S3 PutObject answered 403 Forbidden (SignatureDoesNotMatch)"
        );
        assert!(expect_success("GetObject", StatusCode::OK, b"").is_ok());
    }
}
