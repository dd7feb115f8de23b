//! Files: multipart upload into the object store, listing, download, delete; the size
//! limit; roles and isolation.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use weft::config::StorageConfig;
use weft::storage::ObjectStore;

use crate::harness::TestServer;
use crate::harness::accounts::{create_organization, data, error_code, member, register};
use crate::harness::s3::{self, S3Server};

const UPLOAD: &str = "mutation($i: UploadFileInput!) { uploadFile(input: $i) {
    id name mimeType size sha256 downloadUrl createdBy { email } workspace { id } } }";

/// Sends `uploadFile` as a GraphQL multipart request (operations, map, one file part) and
/// returns the HTTP status and the JSON answer.
pub(crate) async fn upload(
    server: &TestServer,
    token: Option<&str>,
    workspace_id: impl serde::Serialize,
    name: &str,
    mime: &str,
    bytes: Vec<u8>,
) -> (u16, Value) {
    let operations = json!({
        "query": UPLOAD,
        "variables": { "i": { "workspaceId": workspace_id, "file": null } }
    });
    let part = reqwest::multipart::Part::bytes(bytes)
        .file_name(name.to_string())
        .mime_str(mime)
        .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", json!({ "0": ["variables.i.file"] }).to_string())
        .part("0", part);
    let mut request = server.client.post(server.url("/graphql")).multipart(form);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn download(server: &TestServer, token: Option<&str>, id: &str) -> reqwest::Response {
    let mut request = server.client.get(server.url(&format!("/files/{id}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

fn objects_in(server: &TestServer) -> usize {
    fn count(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            count(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    match &server.app.config.storage {
        weft::config::StorageConfig::Local(dir) => count(dir),
        weft::config::StorageConfig::S3(_) => panic!("these tests use the local store"),
    }
}

#[tokio::test]
async fn a_file_is_uploaded_listed_downloaded_and_deleted() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;
    let text = "Refund policy: 30 days. ".repeat(200).into_bytes();
    let (status, answer) = upload(
        &server,
        owner.token(),
        tenant.workspace_id,
        "C:\\docs\\refunds été.txt",
        "text/plain; charset=utf-8",
        text.clone(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let file = data(answer)["uploadFile"].clone();
    let id = file["id"].as_str().unwrap().to_string();
    assert_eq!(file["name"], "refunds été.txt");
    assert_eq!(file["mimeType"], "text/plain; charset=utf-8");
    assert_eq!(file["size"], text.len());
    assert_eq!(file["sha256"], hex::encode(Sha256::digest(&text)));
    assert_eq!(file["downloadUrl"], format!("/files/{id}"));
    assert_eq!(file["createdBy"]["email"], "owner@example.com");
    assert_eq!(file["workspace"]["id"], tenant.workspace_id.to_string());
    assert_eq!(objects_in(&server), 1);

    // Listed through the workspace, filtered, and found by id.
    let listed = data(
        server
            .graphql_as(
                owner.token(),
                "query($w: UUID!) { workspace(id: $w) {
                    pdfs: files(filter: { mimeType: \"application/pdf\" }) { totalCount }
                    named: files(first: 5, filter: { nameContains: \"REFUND\" }) {
                        totalCount edges { node { id sha256 } } } } }",
                json!({ "w": tenant.workspace_id }),
            )
            .await,
    );
    assert_eq!(listed["workspace"]["pdfs"]["totalCount"], 0);
    assert_eq!(listed["workspace"]["named"]["totalCount"], 1);
    assert_eq!(listed["workspace"]["named"]["edges"][0]["node"]["id"], id);
    let found = data(
        server
            .graphql_as(
                owner.token(),
                "query($id: UUID!) { file(id: $id) { name size } }",
                json!({ "id": id }),
            )
            .await,
    );
    assert_eq!(found["file"]["size"], text.len());

    // Downloaded as an attachment, with the digest as ETag.
    let response = download(&server, owner.token(), &id).await;
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        headers["content-disposition"],
        "attachment; filename*=UTF-8''refunds%20%C3%A9t%C3%A9.txt"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    let etag = headers["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{}\"", file["sha256"].as_str().unwrap()));
    assert_eq!(response.bytes().await.unwrap().to_vec(), text);
    let again = server
        .client
        .get(server.url(&format!("/files/{id}")))
        .bearer_auth(owner.token().unwrap())
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let anonymous = download(&server, None, &id).await;
    assert_eq!(anonymous.status(), 401);
    let body: Value = anonymous.json().await.unwrap();
    assert_eq!(error_code(&body), "UNAUTHENTICATED");

    // Deleted: the row, the object, and an audit trail of both changes.
    let deleted = data(
        server
            .graphql_as(
                owner.token(),
                "mutation($id: UUID!) { deleteFile(id: $id) }",
                json!({ "id": id }),
            )
            .await,
    );
    assert_eq!(deleted["deleteFile"], true);
    assert_eq!(
        server.scalar("SELECT count(*) FROM file_references").await,
        0
    );
    assert_eq!(objects_in(&server), 0);
    assert_eq!(download(&server, owner.token(), &id).await.status(), 404);
    assert_eq!(
        server
            .scalar(
                "SELECT count(*) FROM audit_logs WHERE action IN ('file.upload', 'file.delete')"
            )
            .await,
        2
    );
}

#[tokio::test]
async fn too_large_or_malformed_uploads_change_nothing() {
    let server = TestServer::start_with(|c| {
        c.uploads.max_file_bytes = 1024;
        c.uploads.max_request_bytes = 4096;
    })
    .await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;

    let (status, answer) = upload(
        &server,
        owner.token(),
        tenant.workspace_id,
        "big.bin",
        "application/octet-stream",
        vec![7u8; 2048],
    )
    .await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(error_code(&answer), "BAD_USER_INPUT");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("1024")
    );

    // A part whose file name is only a path (written by hand: client libraries tidy names).
    let boundary = "weft-boundary";
    let operations = json!({
        "query": UPLOAD,
        "variables": { "i": { "workspaceId": tenant.workspace_id, "file": null } }
    });
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{operations}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{{\"0\":[\"variables.i.file\"]}}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"0\"; filename=\"../\"\r\n\
         Content-Type: text/plain\r\n\r\nodd\r\n--{boundary}--\r\n"
    );
    let response = server
        .client
        .post(server.url("/graphql"))
        .bearer_auth(owner.token().unwrap())
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(error_code(&answer), "BAD_USER_INPUT", "{answer}");
    assert_eq!(answer["errors"][0]["extensions"]["field"], "file");

    // A JSON body over the request limit is refused before it is read whole.
    let huge = server
        .client
        .post(server.url("/graphql"))
        .json(&json!({ "query": "{ health { version } }", "variables": { "x": "y".repeat(8000) } }))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 413);

    // A mapped file that never came.
    let form = reqwest::multipart::Form::new()
        .text(
            "operations",
            json!({ "query": UPLOAD, "variables": { "i": { "workspaceId": tenant.workspace_id, "file": null } } })
                .to_string(),
        )
        .text("map", json!({ "0": ["variables.i.file"] }).to_string());
    let missing = server
        .client
        .post(server.url("/graphql"))
        .bearer_auth(owner.token().unwrap())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);

    assert_eq!(
        server.scalar("SELECT count(*) FROM file_references").await,
        0
    );
    assert_eq!(objects_in(&server), 0);
}

#[tokio::test]
async fn members_read_editors_write_and_other_workspaces_see_nothing() {
    let server = TestServer::start().await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;
    let reader = member(
        &server,
        &owner,
        tenant.team_id,
        "reader@example.com",
        "MEMBER",
    )
    .await;
    let editor = member(
        &server,
        &owner,
        tenant.team_id,
        "editor@example.com",
        "EDITOR",
    )
    .await;
    let outsider = register(&server, "outsider@example.com").await;
    let other = create_organization(&server, &outsider, "Other").await;

    let (_, answer) = upload(
        &server,
        reader.token(),
        tenant.workspace_id,
        "a.txt",
        "text/plain",
        b"a".to_vec(),
    )
    .await;
    assert_eq!(error_code(&answer), "FORBIDDEN");
    let (_, answer) = upload(
        &server,
        outsider.token(),
        tenant.workspace_id,
        "a.txt",
        "text/plain",
        b"a".to_vec(),
    )
    .await;
    assert_eq!(error_code(&answer), "NOT_FOUND");
    let (_, answer) = upload(
        &server,
        None,
        tenant.workspace_id,
        "a.txt",
        "text/plain",
        b"a".to_vec(),
    )
    .await;
    assert_eq!(error_code(&answer), "UNAUTHENTICATED");
    assert_eq!(
        server.scalar("SELECT count(*) FROM file_references").await,
        0
    );
    assert_eq!(objects_in(&server), 0);

    let (_, answer) = upload(
        &server,
        editor.token(),
        tenant.workspace_id,
        "a.txt",
        "application/octet-stream",
        b"hello".to_vec(),
    )
    .await;
    let uploaded = data(answer)["uploadFile"].clone();
    // Sent as bytes of no particular type: the name tells.
    assert_eq!(uploaded["mimeType"], "text/plain");
    let id = uploaded["id"].as_str().unwrap().to_string();

    // A MEMBER reads and downloads, but does not delete.
    let seen = data(
        server
            .graphql_as(
                reader.token(),
                "query($id: UUID!) { file(id: $id) { name } }",
                json!({ "id": id }),
            )
            .await,
    );
    assert_eq!(seen["file"]["name"], "a.txt");
    assert_eq!(download(&server, reader.token(), &id).await.status(), 200);
    let answer = server
        .graphql_as(
            reader.token(),
            "mutation($id: UUID!) { deleteFile(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&answer), "FORBIDDEN");

    // Another workspace's owner: null, 404 and NOT_FOUND, exactly as for a missing file.
    let hidden = data(
        server
            .graphql_as(
                outsider.token(),
                "query($id: UUID!) { file(id: $id) { name } }",
                json!({ "id": id }),
            )
            .await,
    );
    assert_eq!(hidden["file"], Value::Null);
    let response = download(&server, outsider.token(), &id).await;
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), "NOT_FOUND");
    let answer = server
        .graphql_as(
            outsider.token(),
            "mutation($id: UUID!) { deleteFile(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&answer), "NOT_FOUND");
    let listed = data(
        server
            .graphql_as(
                outsider.token(),
                "query($w: UUID!) { workspace(id: $w) { files { totalCount } } }",
                json!({ "w": other.workspace_id }),
            )
            .await,
    );
    assert_eq!(listed["workspace"]["files"]["totalCount"], 0);
    assert_eq!(
        server.scalar("SELECT count(*) FROM file_references").await,
        1
    );
    assert_eq!(objects_in(&server), 1);

    // The EDITOR deletes it.
    let answer = data(
        server
            .graphql_as(
                editor.token(),
                "mutation($id: UUID!) { deleteFile(id: $id) }",
                json!({ "id": id }),
            )
            .await,
    );
    assert_eq!(answer["deleteFile"], true);
    assert_eq!(objects_in(&server), 0);
}

#[tokio::test]
async fn files_go_to_an_s3_bucket_when_one_is_configured() {
    let s3 = S3Server::start().await;
    let storage = s3.config(s3::SECRET_ACCESS_KEY, "uploads/");
    let server = TestServer::start_with(|c| c.storage = storage).await;
    let owner = register(&server, "owner@example.com").await;
    let tenant = create_organization(&server, &owner, "Acme").await;
    let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let (status, answer) = upload(
        &server,
        owner.token(),
        tenant.workspace_id,
        "table.bin",
        "application/octet-stream",
        bytes.clone(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let id = data(answer)["uploadFile"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // The object sits in the bucket under the prefix, byte for byte.
    let object = s3
        .bucket_dir
        .join("uploads")
        .join(tenant.workspace_id.to_string())
        .join(&id);
    assert_eq!(std::fs::read(&object).unwrap(), bytes);

    let response = download(&server, owner.token(), &id).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.bytes().await.unwrap().to_vec(), bytes);

    let deleted = server
        .graphql_as(
            owner.token(),
            "mutation($id: UUID!) { deleteFile(id: $id) }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data(deleted)["deleteFile"], true);
    assert!(!object.exists(), "the object is removed with the file");
}

#[tokio::test]
async fn a_bucket_that_refuses_the_credentials_or_is_missing_stops_the_start() {
    let s3 = S3Server::start().await;
    let refused = ObjectStore::open(&s3.config("not-the-secret", ""))
        .await
        .err()
        .expect("refused");
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::PermissionDenied,
        "{refused}"
    );
    assert!(!refused.to_string().contains("not-the-secret"));

    let StorageConfig::S3(mut missing) = s3.config(s3::SECRET_ACCESS_KEY, "") else {
        unreachable!()
    };
    missing.bucket = "no-such-bucket".into();
    let missing = ObjectStore::open(&StorageConfig::S3(missing))
        .await
        .err()
        .expect("missing");
    assert_eq!(missing.kind(), std::io::ErrorKind::NotFound);

    let store = ObjectStore::open(&s3.config(s3::SECRET_ACCESS_KEY, ""))
        .await
        .unwrap();
    store.put("ab/cd", b"x").await.unwrap();
    // Temporary credentials (a session token beside the keys) sign the same requests.
    let StorageConfig::S3(mut temporary) = s3.config(s3::SECRET_ACCESS_KEY, "") else {
        unreachable!()
    };
    temporary.session_token = Some(weft::secrets::Secret::new(b"session-token".to_vec()));
    let with_token = ObjectStore::open(&StorageConfig::S3(temporary))
        .await
        .unwrap();
    assert_eq!(with_token.get("ab/cd").await.unwrap(), b"x");
    assert_eq!(store.get("ab/cd").await.unwrap(), b"x");
    store.delete("ab/cd").await.unwrap();
    store.delete("ab/cd").await.unwrap();
    assert_eq!(
        store.get("ab/cd").await.unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
}

#[tokio::test]
async fn an_upload_without_valid_credentials_is_refused_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start().await;
    let address = server.base.trim_start_matches("http://").to_string();
    for authorization in ["", "Authorization: Bearer not-a-token\r\n"] {
        // A 100 MB body is announced; only its first bytes are ever sent.
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: weft\r\n{authorization}\
             Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 104857600\r\n\r\n\
             --b\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut answer = vec![0u8; 1024];
        let n = tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut answer))
            .await
            .expect("answered without waiting for the body")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..n]);
        assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    }
    assert_eq!(
        server.scalar("SELECT count(*) FROM file_references").await,
        0
    );
}
