export { ProvmarkClient, Recording, ProvmarkError, CaptureError, RECORD_ID_ATTRIBUTE, type ClientOptions, type RecordSpec, type ModelSpec, type OtelApi } from './client.js';
export { verifyBundle, verifyCheckpoint, keyStatement, outputHashes, VerificationError, BUNDLE_MEDIA_TYPE, type Verified, type VerifyOptions, type PublicKeyInfo, type Check } from './verify.js';
export { verifyInclusion, verifyConsistency, parseCheckpoint, parseVerifierKey, openNote } from './merkle.js';
export { contentSha256 } from './hashing.js';
export { jcs } from './encoding.js';
export { instrumentOpenAI, instrumentation } from './openai.js';
export { provmarkMiddleware, provmarkEmbeddingMiddleware } from './ai.js';
