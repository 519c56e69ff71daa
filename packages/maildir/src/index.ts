export { type ByteString, fsPath, fromBytes, fromUtf8, toUtf8 } from './bytes.js';
export { encodeName, decodeName, decodeArgument, NameEncodingError } from './encoding.js';
export { type MessageHashes, MessageHasher, hashMessage, sha1, EMPTY_SHA1 } from './hash.js';
