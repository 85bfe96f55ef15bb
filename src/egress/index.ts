export { lockScript, TABLE, unlockScript, type LockSpec } from './rules.js';
export { lockedUids, NftError, runNft, type LockedUid } from './nft.js';
