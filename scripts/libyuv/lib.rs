// Empty: this manifest exists only to pin and fetch libyuv's source (see Cargo.toml).
