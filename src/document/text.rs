//! What both readers share about a document's bytes: the optional UTF-8
//! byte order mark, and line numbers for errors.

/// UTF-8 byte order mark, accepted (and skipped) at the start of a document.
pub(crate) const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Strips a leading UTF-8 BOM.
pub(crate) fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(BOM).unwrap_or(bytes)
}

/// Line number (1-based) of a byte offset.
pub(crate) fn line_of(bytes: &[u8], offset: usize) -> usize {
    let end = offset.min(bytes.len());
    bytes[..end].iter().filter(|&&b| b == b'\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_numbers() {
        assert_eq!(line_of(b"a\nb\nc", 0), 1);
        assert_eq!(line_of(b"a\nb\nc", 2), 2);
        assert_eq!(line_of(b"a\nb\nc", 99), 3);
    }
}
