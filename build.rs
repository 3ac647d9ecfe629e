//! Bakes the libtorch library folder into the binary's rpath so that `premem`
//! runs without LD_LIBRARY_PATH. torch-sys exports that folder as
//! `DEP_TCH_LIBTORCH_LIB` to crates that depend on it directly.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
