// The crypto that proof.js uses, re-exported for one vendored bundle (see build.mjs).
export { secp256k1 } from "@noble/curves/secp256k1.js";
export { keccak_256 } from "@noble/hashes/sha3.js";
