//! An S3-compatible server of the test's own: s3s-fs (an independent implementation of the
//! S3 REST API that checks Signature Version 4) serving a temporary directory on an
//! ephemeral port, with one bucket.

use std::path::PathBuf;

use hyper_util::rt::TokioIo;
use s3s::auth::SimpleAuth;
use s3s::service::S3ServiceBuilder;
use tokio::net::TcpListener;
use weft::config::{S3Config, StorageConfig};
use weft::secrets::Secret;

pub const ACCESS_KEY_ID: &str = "weft-test-access";
pub const SECRET_ACCESS_KEY: &str = "weft-test-secret-0123456789";
pub const BUCKET: &str = "weft-files";

pub struct S3Server {
    pub endpoint: String,
    /// The directory the bucket's objects are files in.
    pub bucket_dir: PathBuf,
}

impl S3Server {
    pub async fn start() -> S3Server {
        let root = std::env::temp_dir().join(format!("weft-s3-{}", uuid::Uuid::new_v4()));
        let bucket_dir = root.join(BUCKET);
        std::fs::create_dir_all(&bucket_dir).unwrap();
        let fs = s3s_fs::FileSystem::new(&root).unwrap();
        let mut builder = S3ServiceBuilder::new(fs);
        builder.set_auth(SimpleAuth::from_single(ACCESS_KEY_ID, SECRET_ACCESS_KEY));
        let service = builder.build();

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let service = service.clone();
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(socket), service)
                        .await;
                });
            }
        });
        S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket_dir,
        }
    }

    /// The server's storage settings, with the given secret and key prefix.
    pub fn config(&self, secret: &str, prefix: &str) -> StorageConfig {
        StorageConfig::S3(S3Config {
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".into(),
            bucket: BUCKET.into(),
            access_key_id: Some(ACCESS_KEY_ID.into()),
            secret_access_key: Some(Secret::new(secret.as_bytes().to_vec())),
            session_token: None,
            prefix: prefix.into(),
            path_style: true,
        })
    }
}
