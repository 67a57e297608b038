// The caching allocator behind every tensor buffer. JS's GC owns ArrayBuffers,
// so the point is not to manage memory by hand but to stop churn: a training
// loop makes the same shapes every step, and a freed buffer goes back to a
// free list keyed by its size class, ready for the next request of that size.
// Sizes round up to classes (4 per power of two above 4 KiB, so at most 25 %
// waste) so that batches of varying length still reuse buffers. When shapes
// keep changing, a miss first evicts cached buffers (largest class first) so
// that in use + cached stays within twice the high-water mark: the cache never
// grows into a leak. The stats make memory measurable: bytes in use, bytes
// cached, and the high-water mark.

/** Shared backing store of one or more tensors (views); freed when refs drops to 0. */
export class Storage {
  refs = 1;
  constructor(readonly buffer: ArrayBuffer, readonly pooled: boolean) {}
}

export interface AllocatorStats {
  /** Bytes of buffers held by live storages (pooled ones, by size class). */
  bytesInUse: number;
  /** Bytes of free buffers waiting in the cache. */
  bytesCached: number;
  /** Highest bytesInUse seen since the start or the last resetPeak(). */
  peakBytesInUse: number;
  /** Buffers handed out, and how many of them came from the cache. */
  allocs: number;
  cacheHits: number;
}

/** Rounds a byte count up to its size class. */
export function sizeClass(bytes: number): number {
  if (bytes <= 4096) return Math.ceil(Math.max(bytes, 1) / 256) * 256;
  const step = 2 ** (Math.floor(Math.log2(bytes)) - 2);
  return Math.ceil(bytes / step) * step;
}

export class CachingAllocator {
  private free = new Map<number, ArrayBuffer[]>();
  private inUse = 0;
  private cached = 0;
  private peak = 0;
  private allocs = 0;
  private hits = 0;

  /** Cached bytes above this are handed to the GC instead of kept (default 4 GiB). */
  maxCachedBytes = 4 * 1024 ** 3;
  /** On a miss, in use + cached is trimmed to this multiple of the high-water mark. */
  footprintFactor = 2;

  /** A storage of at least `bytes` bytes. Its contents are arbitrary (not zeroed). */
  alloc(bytes: number): Storage {
    const cls = sizeClass(bytes);
    this.allocs++;
    const list = this.free.get(cls);
    let buf: ArrayBuffer;
    if (list !== undefined && list.length > 0) {
      buf = list.pop()!;
      this.cached -= cls;
      this.hits++;
    } else {
      this.trim(cls);
      buf = new ArrayBuffer(cls);
    }
    this.inUse += cls;
    if (this.inUse > this.peak) this.peak = this.inUse;
    return new Storage(buf, true);
  }

  /** Gives a pooled storage's buffer back (called when its last view is disposed). */
  release(s: Storage): void {
    if (!s.pooled) return;
    const cls = s.buffer.byteLength;
    this.inUse -= cls;
    if (this.cached + cls > this.maxCachedBytes) return;
    let list = this.free.get(cls);
    if (list === undefined) this.free.set(cls, (list = []));
    list.push(s.buffer);
    this.cached += cls;
  }

  /** Evicts cached buffers, largest class first, until `incoming` more bytes fit the footprint budget. */
  private trim(incoming: number): void {
    const budget = this.footprintFactor * Math.max(this.peak, this.inUse + incoming);
    while (this.cached > 0 && this.inUse + this.cached + incoming > budget) {
      let victim = 0;
      let most = 0;
      for (const [cls, list] of this.free) {
        if (cls * list.length > most) {
          most = cls * list.length;
          victim = cls;
        }
      }
      const list = this.free.get(victim)!;
      list.pop();
      if (list.length === 0) this.free.delete(victim);
      this.cached -= victim;
    }
  }

  stats(): AllocatorStats {
    return { bytesInUse: this.inUse, bytesCached: this.cached, peakBytesInUse: this.peak, allocs: this.allocs, cacheHits: this.hits };
  }

  resetPeak(): void {
    this.peak = this.inUse;
  }

  /** Drops every cached buffer (the GC reclaims them). */
  emptyCache(): void {
    this.free.clear();
    this.cached = 0;
  }
}

/** The process-wide allocator every tensor uses. */
export const allocator = new CachingAllocator();
