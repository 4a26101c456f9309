//! Heads turn the last layer's bits into class scores.

mod group_sum;

pub use group_sum::argmax;

pub use group_sum::GroupSum;
