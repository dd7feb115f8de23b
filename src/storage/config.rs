//! Where the object store keeps files, read from the environment (README: "Files").

use std::path::{Path, PathBuf};

use crate::config::ConfigError;
use crate::secrets::Secret;

#[derive(Clone)]
pub enum StorageConfig {
    /// A directory on local disk.
    Local(PathBuf),
    /// A bucket of an S3-compatible service.
    S3(S3Config),
}

#[derive(Clone)]
pub struct S3Config {
    /// `http(s)://host[:port]` of the service; `None` for Amazon S3 itself (the region's
    /// endpoint).
    pub endpoint: Option<String>,
    pub region: String,
    pub bucket: String,
    /// Given credentials; without them, the environment's (AWS_* with a session token, web
    /// identity, the ECS task role, the EC2 instance profile), as AWS tools find them.
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    /// The session token of temporary credentials (`WEFT_S3_SESSION_TOKEN`, `AWS_SESSION_TOKEN`).
    pub session_token: Option<Secret>,
    /// Prepended to every key: empty, or ending in `/`.
    pub prefix: String,
    /// `endpoint/bucket/key` rather than `bucket.endpoint/key`.
    pub path_style: bool,
}

/// `WEFT_S3_BUCKET` selects S3; otherwise files go to `WEFT_STORAGE_DIR` (by default
/// `<data dir>/files`).
pub fn from_env(
    var: &dyn Fn(&str) -> Option<String>,
    data_dir: &Path,
) -> Result<StorageConfig, ConfigError> {
    let Some(bucket) = var("WEFT_S3_BUCKET") else {
        let dir = var("WEFT_STORAGE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.join("files"));
        return Ok(StorageConfig::Local(dir));
    };
    let valid_bucket = (3..=63).contains(&bucket.len())
        && bucket
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
    if !valid_bucket {
        return Err(ConfigError(format!(
            "WEFT_S3_BUCKET must be 3 to 63 lowercase letters, digits, dots or hyphens, got {bucket:?}"
        )));
    }
    let region = var("WEFT_S3_REGION")
        .or_else(|| var("AWS_REGION"))
        .unwrap_or_else(|| "us-east-1".into());
    if !region
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(ConfigError(format!(
            "WEFT_S3_REGION must be a region name such as us-east-1, got {region:?}"
        )));
    }
    let given_endpoint = var("WEFT_S3_ENDPOINT").map(|e| e.trim_end_matches('/').to_string());
    if let Some(endpoint) = &given_endpoint {
        let well_formed = endpoint
            .split_once("://")
            .filter(|(scheme, rest)| {
                matches!(*scheme, "http" | "https")
                    && !rest.is_empty()
                    && !rest.contains(['/', '@'])
            })
            .is_some();
        if !well_formed {
            return Err(ConfigError(format!(
                "WEFT_S3_ENDPOINT must be http(s)://host[:port] without a path, got {endpoint:?}"
            )));
        }
    }
    let access_key_id = var("WEFT_S3_ACCESS_KEY_ID").or_else(|| var("AWS_ACCESS_KEY_ID"));
    let secret_access_key = var("WEFT_S3_SECRET_ACCESS_KEY")
        .or_else(|| var("AWS_SECRET_ACCESS_KEY"))
        .map(|v| Secret::new(v.into_bytes()));
    if access_key_id.is_some() != secret_access_key.is_some() {
        return Err(ConfigError(
            "WEFT_S3_ACCESS_KEY_ID and WEFT_S3_SECRET_ACCESS_KEY go together (or neither: \
             credentials from the environment)"
                .into(),
        ));
    }
    let session_token = var("WEFT_S3_SESSION_TOKEN")
        .or_else(|| var("AWS_SESSION_TOKEN"))
        .map(|v| Secret::new(v.into_bytes()));
    let prefix = var("WEFT_S3_PREFIX").unwrap_or_default();
    let prefix = prefix.trim_matches('/');
    if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        || prefix.contains("..")
    {
        return Err(ConfigError(format!(
            "WEFT_S3_PREFIX may hold letters, digits, '-', '_', '.' and '/', got {prefix:?}"
        )));
    }
    let prefix = if prefix.is_empty() {
        String::new()
    } else {
        format!("{prefix}/")
    };
    let path_style = match var("WEFT_S3_PATH_STYLE").as_deref() {
        None => given_endpoint.is_some(),
        Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        Some(v) => {
            return Err(ConfigError(format!(
                "WEFT_S3_PATH_STYLE must be true or false, got {v:?}"
            )));
        }
    };
    Ok(StorageConfig::S3(S3Config {
        endpoint: given_endpoint,
        region,
        bucket,
        access_key_id,
        secret_access_key,
        session_token,
        prefix,
        path_style,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn read(vars: &[(&str, &str)]) -> Result<StorageConfig, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        from_env(&|name| map.get(name).cloned(), Path::new("/data"))
    }

    #[test]
    fn local_unless_a_bucket_is_named() {
        match read(&[]).unwrap() {
            StorageConfig::Local(dir) => assert_eq!(dir, Path::new("/data/files")),
            StorageConfig::S3(_) => panic!("expected the local store"),
        }
    }

    #[test]
    fn s3_defaults_to_aws_with_virtual_hosts() {
        let StorageConfig::S3(s3) = read(&[
            ("WEFT_S3_BUCKET", "weft-files"),
            ("WEFT_S3_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "SK"),
            ("WEFT_S3_PREFIX", "/prod/uploads/"),
        ])
        .unwrap() else {
            panic!("expected S3")
        };
        assert_eq!(s3.endpoint, None, "Amazon S3's own");
        assert_eq!(s3.access_key_id.as_deref(), Some("AK"));
        assert!(!s3.path_style);
        assert_eq!(s3.prefix, "prod/uploads/");
    }

    #[test]
    fn s3_with_an_endpoint_uses_path_style() {
        let StorageConfig::S3(s3) = read(&[
            ("WEFT_S3_BUCKET", "files"),
            ("WEFT_S3_ENDPOINT", "http://127.0.0.1:9000/"),
            ("WEFT_S3_ACCESS_KEY_ID", "AK"),
            ("WEFT_S3_SECRET_ACCESS_KEY", "SK"),
        ])
        .unwrap() else {
            panic!("expected S3")
        };
        assert_eq!(s3.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert!(s3.path_style);
        assert_eq!(s3.region, "us-east-1");
    }

    #[test]
    fn without_keys_the_environments_credentials_are_used() {
        let StorageConfig::S3(s3) =
            read(&[("WEFT_S3_BUCKET", "files"), ("AWS_SESSION_TOKEN", "ST")]).unwrap()
        else {
            panic!("expected S3")
        };
        assert!(s3.access_key_id.is_none() && s3.secret_access_key.is_none());
        assert_eq!(s3.session_token.unwrap().expose(), b"ST");
    }

    #[test]
    fn refuses_what_cannot_work() {
        for vars in [
            vec![("WEFT_S3_BUCKET", "files"), ("WEFT_S3_ACCESS_KEY_ID", "AK")],
            vec![
                ("WEFT_S3_BUCKET", "Bad_Bucket"),
                ("WEFT_S3_ACCESS_KEY_ID", "AK"),
            ],
            vec![
                ("WEFT_S3_BUCKET", "files"),
                ("WEFT_S3_ENDPOINT", "ftp://host"),
                ("WEFT_S3_ACCESS_KEY_ID", "AK"),
                ("WEFT_S3_SECRET_ACCESS_KEY", "SK"),
            ],
            vec![
                ("WEFT_S3_BUCKET", "files"),
                ("WEFT_S3_ACCESS_KEY_ID", "AK"),
                ("WEFT_S3_SECRET_ACCESS_KEY", "SK"),
                ("WEFT_S3_PREFIX", "../up"),
            ],
        ] {
            let e = read(&vars).err().expect("refused");
            assert!(e.0.contains("WEFT_S3_"), "{}", e.0);
            assert!(!e.0.contains("SK"), "no secret in {}", e.0);
        }
    }
}
