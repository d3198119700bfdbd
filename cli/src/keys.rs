//! Static keys: making them, writing them safely, reading them back.

use crate::error::CliError;
use rand::TryRng;
use rand::rngs::SysRng;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A fresh private key from the operating system's RNG.
pub fn random_key() -> Result<[u8; 32], CliError> {
    let mut k = [0u8; 32];
    SysRng
        .try_fill_bytes(&mut k)
        .map_err(|e| CliError::Io(format!("the OS random number generator failed: {e}")))?;
    Ok(k)
}

/// `FILE.pub` for `FILE`.
pub fn pub_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

/// `tern keygen`: writes the private key (mode 0600) and the public key,
/// prints the public key in hex.
pub fn keygen(out: &Path, force: bool) -> Result<(), CliError> {
    let public = pub_path(out);
    if !force {
        for p in [out, public.as_path()] {
            if p.exists() {
                return Err(CliError::Key(format!(
                    "{} already exists (use --force to replace it)",
                    p.display()
                )));
            }
        }
    }
    let key = random_key()?;
    let pk = tern_tokio::public_key(&key);
    write_private(out, &format!("{}\n", hex::encode(key)))
        .map_err(|e| CliError::Key(format!("cannot write {}: {e}", out.display())))?;
    fs::write(&public, format!("{}\n", hex::encode(pk)))
        .map_err(|e| CliError::Key(format!("cannot write {}: {e}", public.display())))?;
    eprintln!(
        "wrote {} (private key, owner-only) and {} (public key)",
        out.display(),
        public.display()
    );
    println!("{}", hex::encode(pk));
    Ok(())
}

/// Writes `text` to `path`, readable and writable by its owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    let mut o = fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path)?;
    // A file that existed keeps its old mode through open: fix it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// 32 bytes from 64 hex digits (surrounding whitespace ignored).
pub fn parse_hex_key(s: &str) -> Option<[u8; 32]> {
    let v = hex::decode(s.trim()).ok()?;
    v.try_into().ok()
}

/// Reads a private key file written by `keygen`.
pub fn read_private(path: &Path) -> Result<[u8; 32], CliError> {
    let text = fs::read_to_string(path)
        .map_err(|e| CliError::Key(format!("cannot read key file {}: {e}", path.display())))?;
    parse_hex_key(&text).ok_or_else(|| {
        CliError::Key(format!(
            "{} does not hold a key (expected 64 hex digits, as `tern keygen` writes)",
            path.display()
        ))
    })
}

/// `--server-key`: 64 hex digits, or a file holding them.
pub fn server_key(arg: &str) -> Result<[u8; 32], CliError> {
    if let Some(k) = parse_hex_key(arg) {
        return Ok(k);
    }
    let path = Path::new(arg);
    if path.is_file() {
        let text = fs::read_to_string(path)
            .map_err(|e| CliError::Key(format!("cannot read {}: {e}", path.display())))?;
        return parse_hex_key(&text).ok_or_else(|| {
            CliError::Key(format!(
                "{} does not hold a public key (64 hex digits)",
                path.display()
            ))
        });
    }
    Err(CliError::Usage(format!(
        "--server-key {arg:?} is neither 64 hex digits nor a key file"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_keys_parse_exactly() {
        let k = [0xabu8; 32];
        assert_eq!(parse_hex_key(&format!(" {}\n", hex::encode(k))), Some(k));
        assert_eq!(parse_hex_key("abcd"), None);
        assert_eq!(parse_hex_key(&"zz".repeat(32)), None);
        assert!(matches!(server_key("nope"), Err(CliError::Usage(_))));
    }
}
