/**
 * DataViews over buffers, for code that reads or writes many multi-byte fields: one 32-bit
 * access through a view replaces four byte accesses. Making a view costs an allocation and
 * `buf.buffer`, which V8 does not inline, so the view of the last buffer is kept for the next call,
 * which is most often over the same buffer (a write arena, a read chunk).
 */
let lastBuf: Uint8Array | undefined;
let lastView: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

/** A DataView of exactly `buf`'s bytes (offset 0 is `buf[0]`). */
export function dataViewOf(buf: Uint8Array): DataView<ArrayBufferLike> {
  if (buf !== lastBuf) {
    lastBuf = buf;
    lastView = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  return lastView;
}

/** The kept view if it is `buf`'s, else undefined (making one does not pay for a short range). */
export function keptDataViewOf(buf: Uint8Array): DataView<ArrayBufferLike> | undefined {
  return buf === lastBuf ? lastView : undefined;
}
