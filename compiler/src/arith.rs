//! Integer arithmetic the optimiser's rules and the scheduler share.

/// The divisors of `n`, ascending (none of 0), in O(√n) steps: a search
/// over the ways to cut an extent into equal parts takes as long whatever
/// the extent (a tensor of 2^47 elements is refused later, at planning,
/// not after minutes of trying every part count).
pub fn divisors(n: u64) -> Vec<u64> {
    let (mut low, mut high) = (Vec::new(), Vec::new());
    let mut d = 1u64;
    while d <= n / d {
        if n.is_multiple_of(d) {
            low.push(d);
            if d != n / d {
                high.push(n / d);
            }
        }
        d += 1;
    }
    low.extend(high.into_iter().rev());
    low
}

#[cfg(test)]
mod tests {
    use super::divisors;

    #[test]
    fn divisors_ascend_once_each() {
        assert_eq!(divisors(0), Vec::<u64>::new());
        assert_eq!(divisors(1), vec![1]);
        assert_eq!(divisors(12), vec![1, 2, 3, 4, 6, 12]);
        assert_eq!(divisors(49), vec![1, 7, 49]);
        assert_eq!(divisors(1_048_573), vec![1, 1_048_573]);
        // Brute force over the small ones.
        for n in 1..500u64 {
            let want: Vec<u64> = (1..=n).filter(|d| n % d == 0).collect();
            assert_eq!(divisors(n), want, "{n}");
        }
        // 2^47 - 1 = 2351 · 4513 · 13264529, at once.
        assert_eq!(
            divisors((1 << 47) - 1),
            vec![
                1,
                2351,
                4513,
                10_610_063,
                13_264_529,
                31_184_907_679,
                59_862_819_377,
                (1 << 47) - 1
            ]
        );
    }
}
