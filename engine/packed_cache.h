// Weights packed for oneDNN (models/kernels/packed_conv.h) kept on disk. Packing the UNet costs a
// copy and 1.7 GB of fresh memory at every load (2-6 s on the VM measured here: its fresh
// pages are slow) and saves 0.35-0.5 s per UNet evaluation at 512². The first run with a
// model writes what it packed to a file; later runs map that file in place of the
// weights as stored (the same memory, no copy), so every run, however short, gains.
#pragma once
#include <filesystem>
#include <string>

#include "engine/model_source.h"
#include "engine/weights.h"
#include "models/compute.h"

namespace inpaint {

// The file for a network's packed weights under `dir`: named after the component, the
// files its tensors map (paths, sizes, modification times: a LoRA cache's merged file
// counts) and oneDNN's version and instruction set, what of `compute` decides layouts,
// and `shapes`: what the network runs on (batch, latent or image size), which decides
// them too. oneDNN blocks a weight by the rows it multiplies: the UNet at batch 1
// (guidance 1) and at batch 2 (CFG) packs some layers differently, and runs alternating
// them repacked and rewrote one 1.7 GB file in turn (4.2-5.0 s each, bf16, Zen 5).
std::filesystem::path packed_cache_file(const std::filesystem::path& dir, const Component& component,
                                        const Compute& compute, const std::string& shapes);
// `shapes` for packed_cache_file: a UNet's batch and latents, a VAE's image.
std::string unet_shapes(int64_t batch, int64_t latent_height, int64_t latent_width);
std::string vae_shapes(int64_t height, int64_t width);

// Whether `name` is a file name packed_cache_file() makes (pruning removes only those).
bool is_packed_cache_name(const std::string& name);

// Maps the file's packed weights into the matching empty slots; how many. 0 when there
// is no file, or it fails its checks (checksum of every byte, signature, layouts): then
// it says so on stderr and deletes it, and the weights are packed in memory as without
// it. Removes partial files of dead processes (kill -9 during a write) from the folder.
// Streamed weights (compute.policy) drop the pages checked again. bf16 weights stay
// mapped where the kernel maps most of the file with 2 MB entries, or where the run is
// short (`few_calls`: LCM's 4 steps); elsewhere they are copied into memory of our own
// with 2 MB pages (engine/packed_cache.cpp). A file whose data is not aligned for the
// kernels is deleted and packed again.
size_t use_packed_cache(const std::filesystem::path& file, PackedSlots& slots, const Compute& compute,
                        bool few_calls = false);

// Whether slots were packed in this process (the file lacks them or does not exist).
bool packed_in_memory(const PackedSlots& slots);

// Writes every packed slot to `file` (through a file of this process's own, renamed into
// place: never a half-written one under its name), then keeps the `keep` files used last
// in its folder. False, writing
// nothing, when the folder cannot be made or has too little room. Throws Error on a
// failed write.
bool write_packed_cache(const std::filesystem::path& file, const PackedSlots& slots, const Compute& compute,
                        int keep = 4);

}  // namespace inpaint
