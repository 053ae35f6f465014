mod common;

use sea_orm::DatabaseConnection;
use tend_migrations::{Migrator, MigratorTrait, SchemaManager, TABLES};
use tend_store::Store;
use tend_store::testing::TestDb;

// The store already ran `up` when it connected. These tests walk the schema down and up
// again with sea-orm-migration's migrator on a migration connection, as an operator's
// migrate command would.

async fn existing_tables(connection: &DatabaseConnection) -> Vec<&'static str> {
    let manager = SchemaManager::new(connection);
    let mut present = Vec::new();
    for table in TABLES {
        if manager.has_table(table).await.unwrap() {
            present.push(table);
        }
    }
    present
}

on_both_backends!(
    migrations_down_up_fresh,
    migrations_step_down_in_order,
    nodes_starting_together_migrate_once,
);

async fn migrations_down_up_fresh(db: &TestDb) {
    let connection = &Store::migration_connection(&db.url).await.unwrap();
    assert_eq!(existing_tables(connection).await, TABLES.to_vec());
    let applied = Migrator::get_applied_migrations(connection).await.unwrap();
    assert_eq!(applied.len(), Migrator::migrations().len());

    Migrator::down(connection, None).await.unwrap();
    assert_eq!(existing_tables(connection).await, Vec::<&str>::new());
    assert!(
        Migrator::get_applied_migrations(connection)
            .await
            .unwrap()
            .is_empty()
    );

    Migrator::up(connection, None).await.unwrap();
    assert_eq!(existing_tables(connection).await, TABLES.to_vec());

    // `fresh` drops every table, data included, and builds the schema again.
    common::create(
        &db.store,
        common::new_record("incident", "Before fresh", serde_json::json!({})),
        vec![],
    )
    .await;
    Migrator::fresh(connection).await.unwrap();
    assert_eq!(existing_tables(connection).await, TABLES.to_vec());
    assert_eq!(db.store.get_record("INC0000001").await.unwrap(), None);

    Migrator::reset(connection).await.unwrap();
    assert_eq!(existing_tables(connection).await, Vec::<&str>::new());
    Migrator::up(connection, None).await.unwrap();
    let stored = common::create(
        &db.store,
        common::new_record("incident", "After reset", serde_json::json!({})),
        vec![],
    )
    .await;
    assert_eq!(stored.number, "INC0000001");
    assert!(db.store.verify_audit().await.unwrap().is_clean());
}

async fn migrations_step_down_in_order(db: &TestDb) {
    let connection = &Store::migration_connection(&db.url).await.unwrap();
    let manager = SchemaManager::new(connection);
    assert!(
        manager
            .has_column("schedule_runs", "summary")
            .await
            .unwrap()
    );
    assert!(manager.has_table("mail_outbox").await.unwrap());
    assert!(
        manager
            .has_column("users", "notify_own_changes")
            .await
            .unwrap()
    );
    for table in ["ci_discovered", "ci_sightings", "inventory_imports"] {
        assert!(manager.has_table(table).await.unwrap(), "{table}");
    }
    Migrator::down(connection, Some(1)).await.unwrap();
    for table in ["ci_discovered", "ci_sightings", "inventory_imports"] {
        assert!(!manager.has_table(table).await.unwrap(), "{table}");
    }
    assert!(manager.has_column("users", "locale").await.unwrap());
    Migrator::down(connection, Some(1)).await.unwrap();
    assert!(!manager.has_column("users", "locale").await.unwrap());
    assert!(
        manager
            .has_column("action_runs", "not_before")
            .await
            .unwrap()
    );
    Migrator::down(connection, Some(1)).await.unwrap();
    assert!(
        !manager
            .has_column("action_runs", "not_before")
            .await
            .unwrap()
    );
    assert!(
        !manager
            .has_column("action_runs", "decision_note")
            .await
            .unwrap()
    );
    for table in ["cis", "ci_versions", "ci_keys", "ci_relationships"] {
        assert!(manager.has_table(table).await.unwrap(), "{table}");
    }
    Migrator::down(connection, Some(1)).await.unwrap();
    for table in ["cis", "ci_versions", "ci_keys", "ci_relationships"] {
        assert!(!manager.has_table(table).await.unwrap(), "{table}");
    }
    Migrator::down(connection, Some(1)).await.unwrap();
    assert!(!manager.has_table("mail_outbox").await.unwrap());
    assert!(!manager.has_table("mail_addresses").await.unwrap());
    assert!(
        !manager
            .has_column("users", "notify_own_changes")
            .await
            .unwrap()
    );
    assert!(manager.has_table("alerts").await.unwrap());
    Migrator::down(connection, Some(1)).await.unwrap();
    assert!(!manager.has_table("alerts").await.unwrap());
    assert!(manager.has_table("mail_messages").await.unwrap());
    Migrator::down(connection, Some(1)).await.unwrap();
    assert!(!manager.has_table("attachments").await.unwrap());
    assert!(!manager.has_table("mail_messages").await.unwrap());
    assert!(manager.has_table("action_runs").await.unwrap());
    Migrator::down(connection, Some(1)).await.unwrap();
    assert!(!manager.has_table("action_runs").await.unwrap());
    Migrator::down(connection, Some(1)).await.unwrap();
    assert!(manager.has_table("schedule_runs").await.unwrap());
    assert!(
        !manager
            .has_column("schedule_runs", "summary")
            .await
            .unwrap()
    );
    Migrator::down(connection, Some(1)).await.unwrap();
    let present = existing_tables(connection).await;
    assert!(!present.contains(&"schedule_runs"), "{present:?}");
    assert!(present.contains(&"sla_clocks"), "{present:?}");
    assert!(present.contains(&"follow_ons"), "{present:?}");
    assert!(present.contains(&"definition_versions"), "{present:?}");
    assert!(present.contains(&"approval_rounds"), "{present:?}");
    assert!(present.contains(&"timers"), "{present:?}");
    assert!(present.contains(&"record_links"), "{present:?}");
    assert!(present.contains(&"idempotency_keys"), "{present:?}");
    assert!(present.contains(&"users"), "{present:?}");
    assert_eq!(
        Migrator::get_pending_migrations(connection)
            .await
            .unwrap()
            .len(),
        10
    );

    Migrator::up(connection, None).await.unwrap();
    assert_eq!(existing_tables(connection).await, TABLES.to_vec());
    assert!(
        manager
            .has_column("schedule_runs", "summary")
            .await
            .unwrap()
    );
}

async fn nodes_starting_together_migrate_once(db: &TestDb) {
    let connection = &Store::migration_connection(&db.url).await.unwrap();
    Migrator::reset(connection).await.unwrap();
    assert_eq!(existing_tables(connection).await, Vec::<&str>::new());

    let (first, second, third) = tokio::join!(
        Store::connect(&db.url),
        Store::connect(&db.url),
        Store::connect(&db.url)
    );
    for store in [first, second, third] {
        let store = store.expect("a node failed to start while another migrated");
        store.ping().await.unwrap();
    }
    assert_eq!(existing_tables(connection).await, TABLES.to_vec());
    let applied = Migrator::get_applied_migrations(connection).await.unwrap();
    assert_eq!(applied.len(), Migrator::migrations().len());
}
