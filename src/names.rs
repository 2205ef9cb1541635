//! Names of enums: the words scripts, JSON and reports use for them.

/// Gives an enum `as_str` (its name) and `Display` (the same name).
macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: [$ty; [$($name),+].len()] = [$($ty::$variant),+];

            /// The name scripts, JSON and reports use.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name),+
                }
            }
        }

        // Counters index arrays by `variant as usize`, and `ALL` is listed in that order.
        const _: () = {
            let mut i = 0;
            while i < $ty::ALL.len() {
                assert!(
                    $ty::ALL[i] as usize == i,
                    concat!("`names!` must list the variants of ", stringify!($ty), " in declaration order")
                );
                i += 1;
            }
        };

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use names;
