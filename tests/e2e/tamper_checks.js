async ([token, id]) => {
  // Run in the page by test_browser_checks_catch_tampering: the in-browser verifier
  // must accept what the server signed and refuse forgeries.
  const m = await import('/ui/merkle.js');
  const get = async (p) => (await fetch(p, {headers: {Authorization: `Bearer ${token}`}})).json();
  const flip = (b64) => {
    const b = m.b64decode(b64);
    b[0] ^= 1;
    return b;
  };
  const digests = [];
  for (const n of [0, 1, 55, 56, 63, 64, 65, 1000]) {
    const data = new Uint8Array(n).map((_, i) => (i * 31 + n) & 255);
    digests.push(m.hex(m.sha256Sync(data)) === m.hex(await m.sha256(data)));
  }

  const cps = (await get('/v1/ui/checkpoints')).checkpoints;
  const small = cps[cps.length - 1].size;
  const big = cps[0].size;
  const c = await get(`/v1/checkpoints/consistency?from=${small}&to=${big}`);
  const r1 = m.parseCheckpoint(c.from_checkpoint).root;
  const r2 = m.parseCheckpoint(c.to_checkpoint).root;
  const proof = c.proof.map(m.b64decode);
  const good = await m.verifyConsistency(small, big, proof, r1, r2);
  const bad = await m.verifyConsistency(small, big, [flip(c.proof[0]), ...proof.slice(1)], r1, r2);

  const p = await get(`/v1/records/${id}/proof`);
  const root = m.parseCheckpoint(p.checkpoint).root;
  const path = p.proof.map(m.b64decode);
  const leaf = m.b64decode(p.leaf_hash);
  const inc = await m.verifyInclusion(p.index, p.tree_size, leaf, path, root);
  const wrongLeaf = await m.verifyInclusion(p.index, p.tree_size, flip(p.leaf_hash), path, root);
  const wrongIndex = await m.verifyInclusion(p.index + 1, p.tree_size, leaf, path, root);

  const note = await m.verifyNote(p.checkpoint, p.log_key);
  const altered = p.checkpoint.replace(`\n${p.tree_size}\n`, `\n${p.tree_size + 1}\n`);
  const forged = await m.verifyNote(altered, p.log_key);
  return {
    digests, good: good.ok, bad: bad.ok, inc: inc.ok, wrongLeaf: wrongLeaf.ok,
    wrongIndex: wrongIndex.ok, note: note.ok, forged: forged.ok, forgedReason: forged.reason,
  };
}
