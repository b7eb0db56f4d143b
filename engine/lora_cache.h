// LoRAs merged into the weights once and kept on disk. Applied on the fly (engine/lora.h)
// a LoRA of LCM-LoRA's size costs ~0.6 s per 512x512 step on two cores; merged weights
// cost nothing per step. The first run with a model and a list of LoRAs writes the
// merged tensors, in the model's own dtype, to a cache entry; later runs map them in
// place of the originals (the same memory as the bare model).
#pragma once
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "engine/cache_files.h"
#include "engine/lora.h"
#include "engine/model_source.h"

namespace inpaint {

// The cache entry for this model and these LoRAs, in order: named after the files'
// paths, sizes and modification times and the scales, so a changed file is a new entry.
std::filesystem::path lora_cache_entry(const ModelSource& model, const std::vector<LoraSpec>& loras);

// When the cache holds `loras` merged into `model`'s weights, points those weights at the
// cache and drops any LoRA factors applied already (apply_lora); true. Called before
// apply_lora, it spares reading the LoRA files (their factors widened to f32: 0.4 GB for
// LCM-LoRA). Otherwise (no entry, or a damaged one) `model` is untouched; false. The pages read for the
// checksum are dropped: packed weights (kept, or packed from them, reading the pages
// again) or streamed ones replace them. Held, they added their 1.7 GB to an LCM
// picture's peak (4.2 GB against 2.5 GB).
// The UNet's merged weights are checked where a layer first reads them
// (engine/read_checks.h), not here: kept packed weights usually replace them all. Found
// damaged there, the entry is removed and that read throws Error (the run fails; the
// next one merges again).
bool use_lora_cache(ModelSource& model, const std::vector<LoraSpec>& loras);

// Whether write_lora_cache can merge the model's LoRAs: some are applied, none to int8
// weights (merging would re-quantise them).
bool lora_cache_can_merge(const ModelSource& model);

// Writes the entry from the model's LoRA factors, then keeps the `keep` entries used
// last. False, writing nothing, for int8 models (merging would re-quantise) or too
// little free space. Throws Error on a failed write, leaving no partial entry behind.
bool write_lora_cache(const ModelSource& model, const std::vector<LoraSpec>& loras,
                      const std::function<void(const std::string&)>& progress, int keep = 2);

}  // namespace inpaint
