//! Just enough STUN to route a datagram: is it STUN, and whose ufrag does its USERNAME name.
//! Reads the bytes in place; allocates nothing.

const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const HEADER: usize = 20;
const USERNAME: u16 = 0x0006;

/// True when `d` looks like a STUN message (RFC 5389 header with the magic cookie).
pub fn is_stun(d: &[u8]) -> bool {
    d.len() >= HEADER && d[0] < 4 && d[4..8] == MAGIC_COOKIE
}

/// The first half of a STUN request's USERNAME (`<receiver's ufrag>:<sender's ufrag>`): the
/// ufrag of the connection the request is for. `None` for anything else.
pub fn target_ufrag(d: &[u8]) -> Option<&[u8]> {
    if !is_stun(d) {
        return None;
    }
    let declared = usize::from(u16::from_be_bytes([d[2], d[3]]));
    let end = (HEADER + declared).min(d.len());
    let mut at = HEADER;
    while at + 4 <= end {
        let kind = u16::from_be_bytes([d[at], d[at + 1]]);
        let len = usize::from(u16::from_be_bytes([d[at + 2], d[at + 3]]));
        let value = d.get(at + 4..at + 4 + len)?;
        if kind == USERNAME {
            let colon = value.iter().position(|&b| b == b':')?;
            return Some(&value[..colon]);
        }
        // Attributes are padded to 4 bytes.
        at += 4 + len.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (kind, value) in attrs {
            body.extend_from_slice(&kind.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            while body.len() % 4 != 0 {
                body.push(0);
            }
        }
        let mut d = vec![0x00, 0x01];
        d.extend_from_slice(&(body.len() as u16).to_be_bytes());
        d.extend_from_slice(&MAGIC_COOKIE);
        d.extend_from_slice(&[7; 12]);
        d.extend_from_slice(&body);
        d
    }

    #[test]
    fn finds_the_target_ufrag_after_other_attributes() {
        let d = request(&[(0x0024, b"\0\0\0\x01"), (USERNAME, b"abcd:efgh")]);
        assert_eq!(target_ufrag(&d), Some(&b"abcd"[..]));
        let odd = request(&[(0x8022, b"xyz"), (USERNAME, b"q1w2e:r")]);
        assert_eq!(target_ufrag(&odd), Some(&b"q1w2e"[..]));
    }

    #[test]
    fn junk_and_truncated_messages_have_none() {
        assert!(target_ufrag(b"").is_none());
        assert!(target_ufrag(&[0x80; 40]).is_none()); // RTP
        assert!(target_ufrag(&request(&[(0x0024, b"1234")])).is_none());
        let mut cut = request(&[(USERNAME, b"abcd:efgh")]);
        cut.truncate(26);
        assert!(target_ufrag(&cut).is_none());
        let mut lying = request(&[(USERNAME, b"abcd:efgh")]);
        lying[2] = 0xff; // declared length beyond the datagram
        assert_eq!(target_ufrag(&lying), Some(&b"abcd"[..]));
        assert!(target_ufrag(&request(&[(USERNAME, b"nocolon")])).is_none());
    }
}
