//! This node's Raft id: chosen at random on first start and kept in the data dir.

use std::path::Path;

/// File in the data dir holding this node's Raft id.
const NODE_ID_FILE: &str = "node_id";
/// The id of a data dir made before node ids were stored (single nodes were always 1).
const LEGACY_NODE_ID: u64 = 1;

/// This node's Raft id: read from the data dir, or chosen at random (never 0) and stored
/// on first start. Data dirs from before ids were stored keep id 1.
pub(super) fn load_or_create_node_id(data_dir: &Path) -> std::io::Result<u64> {
    let file = data_dir.join(NODE_ID_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => text.trim().parse().map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", file.display()),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = if data_dir.join("db").exists() {
                LEGACY_NODE_ID
            } else {
                // Below 2^53 so that JSON consumers read it exactly.
                rand::random_range(2..(1u64 << 53))
            };
            let tmp = data_dir.join(format!("{NODE_ID_FILE}.tmp"));
            std::fs::write(&tmp, format!("{id}\n"))?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &file)?;
            Ok(id)
        }
        Err(e) => Err(e),
    }
}

/// Forget this node's id (`reset`): the next start picks a new one, as a fresh node.
pub(super) fn remove_node_id(data_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(data_dir.join(NODE_ID_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_id_is_created_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let id = load_or_create_node_id(dir.path()).unwrap();
        assert!(id >= 2);
        assert_eq!(load_or_create_node_id(dir.path()).unwrap(), id);
    }

    #[test]
    fn a_data_dir_from_before_ids_keeps_id_1() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("db")).unwrap();
        assert_eq!(load_or_create_node_id(dir.path()).unwrap(), LEGACY_NODE_ID);
    }
}
