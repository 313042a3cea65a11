// Model manifests: the YAML files in manifests/ that describe a model and the
// profiles it can run with. See docs/manifests.md.
export type { Manifest, ModelInfo, LicenseInfo, Modality, Profile, ProfileTags, ProfileGoal } from './types.js';
export { loadManifest, loadManifestSync, parseManifest, formatYamlPath } from './load.js';
export { computeProfileId, canonicalJson, type ProfileIdContent } from './profile-id.js';
export { deriveProfileName } from './profile-name.js';
export { profileNodes } from './types.js';
export { PRECISIONS, PRECISION_NAMES, precisionRank, precisionFlags, type PrecisionInfo } from './precision.js';
export { PROFILE_ID_RE, RESERVED_FLAGS } from './schema.js';
export { lastFlagValue, hasFlag, withoutFlag } from './flags.js';
