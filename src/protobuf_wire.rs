//! Protobuf's wire format read field by field, without decoding a message: the remote-write and
//! OTLP receivers count and prune what a request holds before prost allocates anything for it.

/// One field as read: its key, its whole encoding, and its value (the payload of a
/// length-delimited field, the number of a varint one).
pub struct Field<'a> {
    pub number: u64,
    pub wire_type: u64,
    pub encoded: &'a [u8],
    pub payload: Option<&'a [u8]>,
    pub varint: u64,
}

/// The fields of one message in order; after a malformed one the iteration ends.
pub struct Fields<'a> {
    buf: &'a [u8],
}

pub fn fields(message: &[u8]) -> Fields<'_> {
    Fields { buf: message }
}

impl<'a> Fields<'a> {
    fn varint(&mut self) -> Result<u64, &'static str> {
        let mut value = 0u64;
        for (i, b) in self.buf.iter().take(10).enumerate() {
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        Err("invalid varint")
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8], &'static str> {
        let n = usize::try_from(n).map_err(|_| "field length overflow")?;
        if n > self.buf.len() {
            return Err("buffer underflow");
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn field(&mut self) -> Result<Field<'a>, &'static str> {
        let start = self.buf;
        let key = self.varint()?;
        let (number, wire_type) = (key >> 3, key & 7);
        let mut payload = None;
        let mut varint = 0;
        match wire_type {
            0 => varint = self.varint()?,
            1 => drop(self.take(8)?),
            2 => {
                let len = self.varint()?;
                payload = Some(self.take(len)?);
            }
            5 => drop(self.take(4)?),
            // Groups (3, 4) are in neither schema; prost would refuse them too.
            _ => return Err("invalid wire type"),
        }
        let used = start.len() - self.buf.len();
        Ok(Field { number, wire_type, encoded: &start[..used], payload, varint })
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<Field<'a>, &'static str>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            self.buf = &[];
        }
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_wire_type_and_stops_at_damage() {
        // 1: varint 150; 2: bytes "hi"; 3: fixed64; 4: fixed32; then a truncated length.
        let msg =
            [0x08, 0x96, 0x01, 0x12, 2, b'h', b'i', 0x19, 0, 0, 0, 0, 0, 0, 0, 0, 0x25, 0, 0, 0, 0, 0x2a, 9];
        let got: Vec<_> = fields(&msg).collect();
        assert_eq!(got.len(), 5);
        let f = got[0].as_ref().unwrap();
        assert_eq!((f.number, f.wire_type, f.varint, f.encoded), (1, 0, 150, &msg[..3]));
        assert_eq!(got[1].as_ref().unwrap().payload, Some(&b"hi"[..]));
        assert_eq!(got[2].as_ref().unwrap().encoded.len(), 9);
        assert_eq!(got[3].as_ref().unwrap().encoded.len(), 5);
        assert_eq!(got[4].as_ref().err(), Some(&"buffer underflow"));
        assert!(fields(&[0x0b]).next().unwrap().is_err(), "a group is refused");
    }
}
