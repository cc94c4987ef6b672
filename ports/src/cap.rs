//! How many of something a caller may hold: one typed value instead of a number where 0
//! means "no cap", so no caller branches on a magic value.

use std::num::NonZeroU32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// No cap.
    Unlimited,
    /// At most this many.
    AtMost(NonZeroU32),
}

impl Cap {
    /// The cap a setting names, where the settings' convention is that 0 means no cap.
    pub fn from_setting(value: u32) -> Cap {
        NonZeroU32::new(value).map_or(Cap::Unlimited, Cap::AtMost)
    }

    /// Whether `held` more would still be within the cap after one more is taken.
    pub fn admits_one_more(self, held: usize) -> bool {
        match self {
            Cap::Unlimited => true,
            Cap::AtMost(max) => held < max.get() as usize,
        }
    }

    /// The cap as the stores' scripts take it: 0 for none.
    pub fn as_script_arg(self) -> u32 {
        match self {
            Cap::Unlimited => 0,
            Cap::AtMost(max) => max.get(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_no_cap_and_the_cap_is_inclusive() {
        assert_eq!(Cap::from_setting(0), Cap::Unlimited);
        assert!(Cap::Unlimited.admits_one_more(usize::MAX - 1));
        let two = Cap::from_setting(2);
        assert!(two.admits_one_more(1));
        assert!(!two.admits_one_more(2));
        assert_eq!(two.as_script_arg(), 2);
        assert_eq!(Cap::Unlimited.as_script_arg(), 0);
    }
}
