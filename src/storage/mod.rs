//! The only user of sled. (Temporary placeholder until the raft branch lands.)
#![allow(dead_code, unused_variables)]
pub struct Store;
impl Store {
    pub fn open(p: &std::path::Path) -> Result<Store, String> {
        Ok(Store)
    }
}
