mod common;

use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement};
use tend_domain::Role;
use tend_store::testing::TestDb;
use tend_store::{Error, TOKEN_PREFIX, sha256_hex};

on_both_backends!(
    users_add_find_and_count,
    passwords_verify_and_change,
    inactive_user_locked_out,
    tokens_store_only_hash,
    sessions_expire_and_delete,
);

async fn users_add_find_and_count(db: &TestDb) {
    assert_eq!(db.store.count_users().await.unwrap(), 0);
    let ada = db
        .store
        .add_user(
            "ada",
            Some("ada@example.org"),
            &[Role::Technician, Role::Admin],
            "correct horse",
        )
        .await
        .unwrap();
    assert_eq!(ada.name, "ada");
    assert_eq!(ada.email.as_deref(), Some("ada@example.org"));
    assert_eq!(ada.roles, vec![Role::Technician, Role::Admin]);
    assert!(ada.active);
    assert_eq!(ada.actor().name, "ada");
    assert!(ada.actor().is_admin());

    db.store
        .add_user("bob", None, &[], "hunter22")
        .await
        .unwrap();
    assert_eq!(db.store.count_users().await.unwrap(), 2);
    assert_eq!(db.store.find_user("ada").await.unwrap(), Some(ada));
    assert_eq!(db.store.find_user("nobody").await.unwrap(), None);
    let names: Vec<String> = db
        .store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, vec!["ada", "bob"]);

    let duplicate = db
        .store
        .add_user("ada", None, &[Role::Requester], "other")
        .await;
    assert!(
        matches!(duplicate, Err(Error::Duplicate { what: "user", .. })),
        "{duplicate:?}"
    );
    let invalid = db.store.add_user("ada:2", None, &[], "pw").await;
    assert!(matches!(invalid, Err(Error::Invalid(_))), "{invalid:?}");
    let empty = db.store.add_user("carol", None, &[], "").await;
    assert!(matches!(empty, Err(Error::Invalid(_))), "{empty:?}");
}

async fn passwords_verify_and_change(db: &TestDb) {
    db.store
        .add_user("ada", None, &[Role::Requester], "first secret")
        .await
        .unwrap();

    let user = db
        .store
        .verify_password("ada", "first secret")
        .await
        .unwrap();
    assert_eq!(user.map(|u| u.name).as_deref(), Some("ada"));
    assert_eq!(
        db.store.verify_password("ada", "wrong").await.unwrap(),
        None
    );
    assert_eq!(
        db.store
            .verify_password("nobody", "first secret")
            .await
            .unwrap(),
        None
    );

    let stored: String = scalar(db, "SELECT password_hash FROM users WHERE name = 'ada'").await;
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    assert!(!stored.contains("first secret"));

    db.store.set_password("ada", "second secret").await.unwrap();
    assert_eq!(
        db.store
            .verify_password("ada", "first secret")
            .await
            .unwrap(),
        None
    );
    assert!(
        db.store
            .verify_password("ada", "second secret")
            .await
            .unwrap()
            .is_some()
    );

    let missing = db.store.set_password("nobody", "x").await;
    assert!(
        matches!(missing, Err(Error::NotFound { what: "user", .. })),
        "{missing:?}"
    );
}

async fn inactive_user_locked_out(db: &TestDb) {
    db.store
        .add_user("ada", None, &[Role::Technician], "secret")
        .await
        .unwrap();
    let token = db.store.create_token("ada", "ci").await.unwrap();
    let (cookie, _) = db
        .store
        .create_session("ada", Duration::from_secs(3600))
        .await
        .unwrap();

    db.store.set_user_active("ada", false).await.unwrap();
    assert_eq!(
        db.store.verify_password("ada", "secret").await.unwrap(),
        None
    );
    assert_eq!(db.store.user_for_token(&token).await.unwrap(), None);
    assert_eq!(db.store.session(&cookie).await.unwrap(), None);

    db.store.set_user_active("ada", true).await.unwrap();
    assert!(
        db.store
            .verify_password("ada", "secret")
            .await
            .unwrap()
            .is_some()
    );
    assert!(db.store.user_for_token(&token).await.unwrap().is_some());
}

async fn tokens_store_only_hash(db: &TestDb) {
    db.store
        .add_user("ada", None, &[Role::Technician], "secret")
        .await
        .unwrap();
    let token = db.store.create_token("ada", "deploy script").await.unwrap();
    assert!(token.starts_with(TOKEN_PREFIX));
    assert_eq!(token.len(), TOKEN_PREFIX.len() + 40);
    assert!(
        token[TOKEN_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );

    let user = db
        .store
        .user_for_token(&token)
        .await
        .unwrap()
        .expect("token not accepted");
    assert_eq!(user.name, "ada");
    assert_eq!(db.store.user_for_token("tend_wrong").await.unwrap(), None);
    assert_eq!(db.store.user_for_token("").await.unwrap(), None);

    // The last use is stamped by a background write shortly after the lookup.
    let mut stamped = false;
    for _ in 0..100 {
        let count: String = scalar(
            db,
            "SELECT CAST(COUNT(*) AS TEXT) FROM api_tokens WHERE last_used_at IS NOT NULL",
        )
        .await;
        if count == "1" {
            stamped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stamped, "last_used_at was not recorded");

    let stored: String = scalar(db, "SELECT token_hash FROM api_tokens").await;
    assert_eq!(stored, sha256_hex(&token));
    assert!(!stored.contains(&token[TOKEN_PREFIX.len()..]));
    let label: String = scalar(db, "SELECT label FROM api_tokens").await;
    assert_eq!(label, "deploy script");

    let second = db.store.create_token("ada", "other").await.unwrap();
    assert_ne!(second, token);
    let missing = db.store.create_token("nobody", "x").await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
}

async fn sessions_expire_and_delete(db: &TestDb) {
    db.store
        .add_user("ada", None, &[Role::Requester], "secret")
        .await
        .unwrap();
    let (cookie, csrf) = db
        .store
        .create_session("ada", Duration::from_secs(3600))
        .await
        .unwrap();
    assert_ne!(cookie, csrf);

    let (user, session_csrf) = db
        .store
        .session(&cookie)
        .await
        .unwrap()
        .expect("session not found");
    assert_eq!(user.name, "ada");
    assert_eq!(session_csrf, csrf);
    assert_eq!(db.store.session("not-a-session").await.unwrap(), None);
    let stored: String = scalar(db, "SELECT id FROM sessions").await;
    assert_eq!(stored, sha256_hex(&cookie));

    let (short, _) = db
        .store
        .create_session("ada", Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        db.store.session(&short).await.unwrap(),
        None,
        "expired session accepted"
    );
    assert_eq!(db.store.purge_expired_sessions().await.unwrap(), 1);

    db.store.delete_session(&cookie).await.unwrap();
    assert_eq!(db.store.session(&cookie).await.unwrap(), None);
    let missing = db
        .store
        .create_session("nobody", Duration::from_secs(60))
        .await;
    assert!(
        matches!(missing, Err(Error::NotFound { .. })),
        "{missing:?}"
    );
}

async fn scalar(db: &TestDb, sql: &str) -> String {
    let connection = db.store.db();
    let statement = Statement::from_string(connection.get_database_backend(), sql.to_owned());
    let row = connection
        .query_one_raw(statement)
        .await
        .unwrap()
        .expect("no row");
    row.try_get_by_index::<String>(0).unwrap()
}
