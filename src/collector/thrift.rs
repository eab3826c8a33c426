//! Just enough Thrift to read what Jaeger clients send: the compact and binary protocols'
//! value encodings, messages and `skip`, hand-written because the `thrift` crate brings a
//! server runtime, threadpool and `log` for what is ~250 lines of decoding. Every length is
//! checked against the bytes left and nesting is capped, so a hostile packet costs nothing.

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ThriftError {
    #[error("truncated thrift input at byte {0}")]
    Truncated(usize),
    #[error("invalid thrift {what} at byte {at}")]
    Invalid { what: &'static str, at: usize },
    #[error("thrift nesting deeper than {0}")]
    TooDeep(usize),
    #[error("required field {0} missing")]
    Missing(&'static str),
    #[error("unexpected thrift message {0:?}")]
    UnexpectedMessage(String),
    #[error("batch of {spans} spans exceeds the limit of {limit}")]
    TooManySpans { spans: usize, limit: usize },
}

const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TType {
    Bool,
    Byte,
    I16,
    I32,
    I64,
    Double,
    Binary,
    Struct,
    Map,
    Set,
    List,
}

pub trait Protocol {
    fn read_message_begin(&mut self) -> Result<String, ThriftError>;
    fn read_struct_begin(&mut self);
    fn read_struct_end(&mut self);
    /// `None` at the end of a struct.
    fn read_field_begin(&mut self) -> Result<Option<(i16, TType)>, ThriftError>;
    fn read_bool(&mut self) -> Result<bool, ThriftError>;
    fn read_byte(&mut self) -> Result<i8, ThriftError>;
    fn read_i16(&mut self) -> Result<i16, ThriftError>;
    fn read_i32(&mut self) -> Result<i32, ThriftError>;
    fn read_i64(&mut self) -> Result<i64, ThriftError>;
    fn read_double(&mut self) -> Result<f64, ThriftError>;
    fn read_binary(&mut self) -> Result<Vec<u8>, ThriftError>;
    fn read_list_begin(&mut self) -> Result<(TType, usize), ThriftError>;
    fn read_map_begin(&mut self) -> Result<(TType, TType, usize), ThriftError>;

    fn read_string(&mut self) -> Result<String, ThriftError> {
        // Jaeger clients may send arbitrary bytes in strings; keep them, lossily.
        Ok(String::from_utf8_lossy(&self.read_binary()?).into_owned())
    }

    fn skip(&mut self, ttype: TType) -> Result<(), ThriftError> {
        self.skip_depth(ttype, 0)
    }

    fn skip_depth(&mut self, ttype: TType, depth: usize) -> Result<(), ThriftError> {
        if depth > MAX_DEPTH {
            return Err(ThriftError::TooDeep(MAX_DEPTH));
        }
        match ttype {
            TType::Bool => drop(self.read_bool()?),
            TType::Byte => drop(self.read_byte()?),
            TType::I16 => drop(self.read_i16()?),
            TType::I32 => drop(self.read_i32()?),
            TType::I64 => drop(self.read_i64()?),
            TType::Double => drop(self.read_double()?),
            TType::Binary => drop(self.read_binary()?),
            TType::Struct => {
                self.read_struct_begin();
                while let Some((_, t)) = self.read_field_begin()? {
                    self.skip_depth(t, depth + 1)?;
                }
                self.read_struct_end();
            }
            TType::List | TType::Set => {
                let (t, n) = self.read_list_begin()?;
                for _ in 0..n {
                    self.skip_depth(t, depth + 1)?;
                }
            }
            TType::Map => {
                let (k, v, n) = self.read_map_begin()?;
                for _ in 0..n {
                    self.skip_depth(k, depth + 1)?;
                    self.skip_depth(v, depth + 1)?;
                }
            }
        }
        Ok(())
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ThriftError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or(ThriftError::Truncated(self.pos))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, ThriftError> {
        Ok(self.take(1)?[0])
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// A collection of `n` elements needs at least `n` bytes (bools and empty structs take one).
    fn check_count(&self, n: usize) -> Result<usize, ThriftError> {
        if n > self.remaining() {
            Err(ThriftError::Invalid { what: "collection size", at: self.pos })
        } else {
            Ok(n)
        }
    }
}

pub struct Compact<'a> {
    c: Cursor<'a>,
    last_field: Vec<i16>,
    current_field: i16,
    pending_bool: Option<bool>,
}

impl<'a> Compact<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Compact { c: Cursor { buf, pos: 0 }, last_field: Vec::new(), current_field: 0, pending_bool: None }
    }

    fn varint(&mut self) -> Result<u64, ThriftError> {
        let mut result = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.c.byte()?;
            if shift == 63 && b > 1 {
                return Err(ThriftError::Invalid { what: "varint", at: self.c.pos });
            }
            result |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(result);
            }
        }
        Err(ThriftError::Invalid { what: "varint", at: self.c.pos })
    }

    fn zigzag(&mut self) -> Result<i64, ThriftError> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    fn ttype(&self, nibble: u8) -> Result<TType, ThriftError> {
        Ok(match nibble {
            1 | 2 => TType::Bool,
            3 => TType::Byte,
            4 => TType::I16,
            5 => TType::I32,
            6 => TType::I64,
            7 => TType::Double,
            8 => TType::Binary,
            9 => TType::List,
            10 => TType::Set,
            11 => TType::Map,
            12 => TType::Struct,
            _ => return Err(ThriftError::Invalid { what: "compact type", at: self.c.pos }),
        })
    }
}

impl Protocol for Compact<'_> {
    fn read_message_begin(&mut self) -> Result<String, ThriftError> {
        if self.c.byte()? != 0x82 {
            return Err(ThriftError::Invalid { what: "compact protocol id", at: self.c.pos });
        }
        let version_type = self.c.byte()?;
        if version_type & 0x1f != 1 {
            return Err(ThriftError::Invalid { what: "compact version", at: self.c.pos });
        }
        let _seq = self.varint()?;
        self.read_string()
    }

    fn read_struct_begin(&mut self) {
        self.last_field.push(self.current_field);
        self.current_field = 0;
    }

    fn read_struct_end(&mut self) {
        self.current_field = self.last_field.pop().unwrap_or(0);
    }

    fn read_field_begin(&mut self) -> Result<Option<(i16, TType)>, ThriftError> {
        let header = self.c.byte()?;
        let kind = header & 0x0f;
        if kind == 0 {
            return Ok(None);
        }
        let delta = header >> 4;
        let id = if delta == 0 {
            i16::try_from(self.zigzag()?)
                .map_err(|_| ThriftError::Invalid { what: "field id", at: self.c.pos })?
        } else {
            self.current_field.wrapping_add(i16::from(delta))
        };
        self.current_field = id;
        let t = self.ttype(kind)?;
        if t == TType::Bool {
            self.pending_bool = Some(kind == 1);
        }
        Ok(Some((id, t)))
    }

    fn read_bool(&mut self) -> Result<bool, ThriftError> {
        match self.pending_bool.take() {
            Some(b) => Ok(b),
            None => Ok(self.c.byte()? == 1),
        }
    }

    fn read_byte(&mut self) -> Result<i8, ThriftError> {
        Ok(self.c.byte()? as i8)
    }

    fn read_i16(&mut self) -> Result<i16, ThriftError> {
        i16::try_from(self.zigzag()?).map_err(|_| ThriftError::Invalid { what: "i16", at: self.c.pos })
    }

    fn read_i32(&mut self) -> Result<i32, ThriftError> {
        i32::try_from(self.zigzag()?).map_err(|_| ThriftError::Invalid { what: "i32", at: self.c.pos })
    }

    fn read_i64(&mut self) -> Result<i64, ThriftError> {
        self.zigzag()
    }

    fn read_double(&mut self) -> Result<f64, ThriftError> {
        let b = self.c.take(8)?;
        Ok(f64::from_le_bytes(b.try_into().map_err(|_| ThriftError::Truncated(self.c.pos))?))
    }

    fn read_binary(&mut self) -> Result<Vec<u8>, ThriftError> {
        let n = usize::try_from(self.varint()?).map_err(|_| ThriftError::Truncated(self.c.pos))?;
        Ok(self.c.take(n)?.to_vec())
    }

    fn read_list_begin(&mut self) -> Result<(TType, usize), ThriftError> {
        let header = self.c.byte()?;
        let t = self.ttype(header & 0x0f)?;
        let n = if header >> 4 == 15 {
            usize::try_from(self.varint()?).map_err(|_| ThriftError::Truncated(self.c.pos))?
        } else {
            usize::from(header >> 4)
        };
        Ok((t, self.c.check_count(n)?))
    }

    fn read_map_begin(&mut self) -> Result<(TType, TType, usize), ThriftError> {
        let n = usize::try_from(self.varint()?).map_err(|_| ThriftError::Truncated(self.c.pos))?;
        if n == 0 {
            return Ok((TType::Byte, TType::Byte, 0));
        }
        let kv = self.c.byte()?;
        Ok((self.ttype(kv >> 4)?, self.ttype(kv & 0x0f)?, self.c.check_count(n)?))
    }
}

pub struct Binary<'a> {
    c: Cursor<'a>,
}

impl<'a> Binary<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Binary { c: Cursor { buf, pos: 0 } }
    }

    fn ttype(&self, b: u8) -> Result<TType, ThriftError> {
        Ok(match b {
            2 => TType::Bool,
            3 => TType::Byte,
            4 => TType::Double,
            6 => TType::I16,
            8 => TType::I32,
            10 => TType::I64,
            11 => TType::Binary,
            12 => TType::Struct,
            13 => TType::Map,
            14 => TType::Set,
            15 => TType::List,
            _ => return Err(ThriftError::Invalid { what: "binary type", at: self.c.pos }),
        })
    }

    fn len(&mut self) -> Result<usize, ThriftError> {
        let n = self.read_i32()?;
        usize::try_from(n).map_err(|_| ThriftError::Invalid { what: "negative length", at: self.c.pos })
    }
}

impl Protocol for Binary<'_> {
    fn read_message_begin(&mut self) -> Result<String, ThriftError> {
        let first = self.read_i32()?;
        if first < 0 {
            if (first as u32) & 0xffff_0000 != 0x8001_0000 {
                return Err(ThriftError::Invalid { what: "binary protocol version", at: self.c.pos });
            }
            let name = self.read_string()?;
            let _seq = self.read_i32()?;
            Ok(name)
        } else {
            // Old non-strict header: name length first, then type byte and sequence id.
            let n = usize::try_from(first).map_err(|_| ThriftError::Truncated(self.c.pos))?;
            let name = String::from_utf8_lossy(self.c.take(n)?).into_owned();
            let _type = self.c.byte()?;
            let _seq = self.read_i32()?;
            Ok(name)
        }
    }

    fn read_struct_begin(&mut self) {}

    fn read_struct_end(&mut self) {}

    fn read_field_begin(&mut self) -> Result<Option<(i16, TType)>, ThriftError> {
        let t = self.c.byte()?;
        if t == 0 {
            return Ok(None);
        }
        let t = self.ttype(t)?;
        Ok(Some((self.read_i16()?, t)))
    }

    fn read_bool(&mut self) -> Result<bool, ThriftError> {
        Ok(self.c.byte()? != 0)
    }

    fn read_byte(&mut self) -> Result<i8, ThriftError> {
        Ok(self.c.byte()? as i8)
    }

    fn read_i16(&mut self) -> Result<i16, ThriftError> {
        let b = self.c.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn read_i32(&mut self) -> Result<i32, ThriftError> {
        let b = self.c.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn read_i64(&mut self) -> Result<i64, ThriftError> {
        let b = self.c.take(8)?;
        Ok(i64::from_be_bytes(b.try_into().map_err(|_| ThriftError::Truncated(self.c.pos))?))
    }

    fn read_double(&mut self) -> Result<f64, ThriftError> {
        Ok(f64::from_bits(self.read_i64()? as u64))
    }

    fn read_binary(&mut self) -> Result<Vec<u8>, ThriftError> {
        let n = self.len()?;
        Ok(self.c.take(n)?.to_vec())
    }

    fn read_list_begin(&mut self) -> Result<(TType, usize), ThriftError> {
        let t = self.c.byte()?;
        let t = self.ttype(t)?;
        let n = self.len()?;
        Ok((t, self.c.check_count(n)?))
    }

    fn read_map_begin(&mut self) -> Result<(TType, TType, usize), ThriftError> {
        let (k, v) = (self.c.byte()?, self.c.byte()?);
        let (k, v) = (self.ttype(k)?, self.ttype(v)?);
        let n = self.len()?;
        Ok((k, v, self.c.check_count(n)?))
    }
}
