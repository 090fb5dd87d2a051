import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/hooks/line-splitter.js';

describe('LineSplitter', () => {
  it('splits across chunks and keeps the last line without a newline', () => {
    const splitter = new LineSplitter();
    expect(splitter.push(Buffer.from('one\ntw'))).toEqual(['one']);
    expect(splitter.push(Buffer.from('o\r\nthree'))).toEqual(['two']);
    expect(splitter.push(Buffer.from('\n\n'))).toEqual(['three', '']);
    expect(splitter.push(Buffer.from('tail'))).toEqual([]);
    expect(splitter.end()).toEqual(['tail']);
  });

  it('decodes UTF-8 sequences cut between chunks', () => {
    const bytes = Buffer.from('héllo wörld\n');
    const splitter = new LineSplitter();
    const lines = [...splitter.push(bytes.subarray(0, 2)), ...splitter.push(bytes.subarray(2, 9)), ...splitter.push(bytes.subarray(9))];
    expect(lines).toEqual(['héllo wörld']);
  });

  it('cuts lines longer than the cap, inside one chunk and across chunks', () => {
    const splitter = new LineSplitter(10);
    expect(splitter.push(Buffer.from('abcdefghijKLMNOPQRSTuv\n'))).toEqual(['abcdefghij', 'KLMNOPQRST', 'uv']);
    expect(splitter.push(Buffer.from('1234567'))).toEqual([]);
    expect(splitter.push(Buffer.from('89012345'))).toEqual(['1234567890']);
    expect(splitter.end()).toEqual(['12345']);
  });

  it('does not split a surrogate pair at the cap', () => {
    const splitter = new LineSplitter(5);
    const lines = splitter.push(Buffer.from('abcd😀ef\n'));
    expect(lines).toEqual(['abcd', '😀ef']);
  });
});
