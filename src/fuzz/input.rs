//! Input generation: a small seeded generator and byte mutations (bit
//! flips, interesting values, insertions, deletions, duplications,
//! dictionary tokens, splices, truncation) applied to valid seeds, with
//! some pure noise.

/// xorshift64*: fast, seeded, good enough to spread mutations.
pub struct Rng(u64);

/// Bytes that sit at the edges of lengths, counts and flags.
const INTERESTING: [u8; 8] = [0x00, 0x01, 0x0c, 0x3f, 0x40, 0x7f, 0x80, 0xff];

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..bound` (0 when `bound` is 0).
    pub fn below(&mut self, bound: usize) -> usize {
        if bound == 0 {
            return 0;
        }
        (self.next_u64() % bound as u64) as usize
    }

    /// True one time in `n`.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// Random bytes, up to `max` of them.
    pub fn noise(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.byte()).collect()
    }

    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// A mutation of one of `seeds` (or noise, one time in 16), with tokens
/// from `dictionary` among the insertions.
pub fn generate(rng: &mut Rng, seeds: &[Vec<u8>], dictionary: &[&[u8]]) -> Vec<u8> {
    if seeds.is_empty() || rng.one_in(16) {
        return rng.noise(512);
    }
    let mut out = rng.pick(seeds).clone();
    for _ in 0..1 + rng.below(4) {
        mutate(rng, &mut out, seeds, dictionary);
    }
    out
}

/// Applies one mutation to `data`.
fn mutate(rng: &mut Rng, data: &mut Vec<u8>, seeds: &[Vec<u8>], dictionary: &[&[u8]]) {
    let len = data.len();
    let at = rng.below(len + 1);
    match rng.below(9) {
        0 if len > 0 => {
            let i = rng.below(len);
            data[i] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let i = rng.below(len);
            data[i] = *rng.pick(&INTERESTING);
        }
        2 => {
            let bytes = rng.noise(8);
            data.splice(at..at, bytes);
        }
        3 if len > 0 => {
            let end = (at + 1 + rng.below(16)).min(len);
            data.drain(at.min(len)..end.max(at.min(len)));
        }
        4 if len > 0 => {
            let start = rng.below(len);
            let end = (start + 1 + rng.below(32)).min(len);
            let copy = data[start..end].to_vec();
            data.splice(at..at, copy);
        }
        5 if !dictionary.is_empty() => {
            let token = rng.pick(dictionary).to_vec();
            data.splice(at..at, token);
        }
        6 => {
            let other = rng.pick(seeds);
            let from = rng.below(other.len() + 1);
            data.truncate(at);
            data.extend_from_slice(&other[from..]);
        }
        7 => data.truncate(at),
        _ if len > 1 => {
            // A 16-bit field set to an edge value (lengths, counts).
            let i = rng.below(len - 1);
            let value: u16 = *rng.pick(&[0, 1, 0x7fff, 0x8000, 0xffff, 0xc000, 12, 512]);
            data[i..i + 2].copy_from_slice(&value.to_be_bytes());
        }
        _ => data.push(rng.byte()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_varied() {
        let seeds = vec![b"hello world".to_vec()];
        let a: Vec<Vec<u8>> = {
            let mut rng = Rng::new(3);
            (0..50)
                .map(|_| generate(&mut rng, &seeds, &[b"x"]))
                .collect()
        };
        let b: Vec<Vec<u8>> = {
            let mut rng = Rng::new(3);
            (0..50)
                .map(|_| generate(&mut rng, &seeds, &[b"x"]))
                .collect()
        };
        assert_eq!(a, b);
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert!(distinct.len() > 40);
    }
}
