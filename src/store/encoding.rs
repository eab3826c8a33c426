//! Byte-level helpers shared by the WAL, checkpoint and series records: varints and a reader
//! that returns `None` instead of panicking on short or damaged input.

pub fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Zig-zag: small negative and positive numbers both become small unsigned ones.
pub fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

pub fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

pub fn put_varint(out: &mut Vec<u8>, v: i64) {
    put_uvarint(out, zigzag(v));
}

pub fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_uvarint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Reads what the `put_*` functions wrote; every read fails soft on damaged input.
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// What is left unread.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn uvarint(&mut self) -> Option<u64> {
        let mut out = 0u64;
        for (i, &b) in self.buf.iter().enumerate().take(10) {
            out |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                self.buf = &self.buf[i + 1..];
                return Some(out);
            }
        }
        None
    }

    pub fn varint(&mut self) -> Option<i64> {
        let u = self.uvarint()?;
        Some(unzigzag(u))
    }

    pub fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.buf.split_first()?;
        self.buf = rest;
        Some(b)
    }

    pub fn u64_be(&mut self) -> Option<u64> {
        let (head, rest) = self.buf.split_at_checked(8)?;
        self.buf = rest;
        Some(u64::from_be_bytes(head.try_into().ok()?))
    }

    pub fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.uvarint()?).ok()?;
        let (head, rest) = self.buf.split_at_checked(n)?;
        self.buf = rest;
        Some(head)
    }

    pub fn str(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_soft_failure() {
        let mut b = Vec::new();
        put_uvarint(&mut b, u64::MAX);
        put_varint(&mut b, i64::MIN);
        put_varint(&mut b, -3);
        put_bytes(&mut b, b"abc");
        let mut r = Reader::new(&b);
        assert_eq!(r.uvarint(), Some(u64::MAX));
        assert_eq!(r.varint(), Some(i64::MIN));
        assert_eq!(r.varint(), Some(-3));
        assert_eq!(r.str(), Some("abc"));
        assert!(r.is_empty());
        let mut r = Reader::new(&b[..b.len() - 1]);
        r.uvarint();
        r.varint();
        r.varint();
        assert_eq!(r.bytes(), None);
    }
}
