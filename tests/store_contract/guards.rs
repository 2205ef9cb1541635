//! Shared guards: a state every replica reads, written compare-and-set, so that two replicas never both win.

use super::Subject;

pub(super) async fn guards_are_written_compare_and_set(s: &Subject) {
    let store = &s.store;
    assert_eq!(store.guard("budget").await.unwrap(), None, "{}: not written yet", s.name);
    assert!(store.set_guard("budget", None, r#"{"tokens":500}"#).await.unwrap(), "{}", s.name);
    assert!(!store.set_guard("budget", None, r#"{"tokens":1}"#).await.unwrap(), "{}: created once", s.name);
    let row = store.guard("budget").await.unwrap().unwrap();
    assert_eq!((row.value.as_str(), row.version), (r#"{"tokens":500}"#, 1), "{}", s.name);
    // Two writers that read version 1: one wins, the other must read again.
    assert!(store.set_guard("budget", Some(1), r#"{"tokens":486}"#).await.unwrap(), "{}", s.name);
    assert!(!store.set_guard("budget", Some(1), r#"{"tokens":495}"#).await.unwrap(), "{}", s.name);
    let row = store.guard("budget").await.unwrap().unwrap();
    assert_eq!((row.value.as_str(), row.version), (r#"{"tokens":486}"#, 2), "{}", s.name);
    assert_eq!(store.guard("breaker:brightcove").await.unwrap(), None, "{}: one row per name", s.name);
}
