/*
 * Posters drawn in the page from a title's name and genre: the catalog has no
 * artwork, and a bare gradient made every card look alike.
 *
 * The genre picks a palette, a motif (stars for sci-fi, a moon for horror,
 * rays for action, ...) and a typeface; a hash of the title id varies the hue
 * and the motif's layout, so two dramas differ but stay recognisably dramas.
 * The name is set large and wrapped on the poster itself. The result is an SVG
 * data: URL used as the card's background: nothing is fetched.
 */
"use strict";

(() => {
  /** FNV-1a with a final mix, as a seeded pseudo-random stream. */
  function hash(text) {
    let h = 2166136261;
    for (const ch of String(text)) h = Math.imul(h ^ ch.codePointAt(0), 16777619);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    return h >>> 0;
  }

  function random(seed) {
    let s = seed || 1;
    return () => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return ((s >>> 0) % 10_000) / 10_000;
    };
  }

  // family: [hue, saturation, lightness of the dark end, motif, font]
  const FAMILIES = [
    [/horror|thriller|crime|mystery/i, [350, 55, 8, "moon", "Georgia, 'DejaVu Serif', serif"]],
    [/sci-fi|science|fantasy/i, [225, 60, 10, "stars", "'DejaVu Sans Mono', monospace"]],
    [/action|adventure|sport/i, [18, 80, 14, "rays", "Impact, 'DejaVu Sans Condensed', sans-serif"]],
    [/comed|stand-up|musical|music/i, [45, 85, 30, "dots", "'Trebuchet MS', 'DejaVu Sans', sans-serif"]],
    [/kid|children|family|anime/i, [190, 75, 28, "bubbles", "'Comic Sans MS', 'DejaVu Sans', sans-serif"]],
    [/romantic|romance|lgbtq/i, [330, 60, 18, "waves", "Georgia, 'DejaVu Serif', serif"]],
    [/docu|docuseries|reality|science & nature/i, [150, 45, 12, "lines", "'Helvetica Neue', 'DejaVu Sans', sans-serif"]],
    [/drama|independent|classic|international/i, [265, 35, 12, "frame", "Georgia, 'DejaVu Serif', serif"]],
  ];
  const DEFAULT_FAMILY = [210, 30, 14, "frame", "'DejaVu Sans', sans-serif"];

  function family(genres) {
    const text = (genres || []).join(" ");
    for (const [pattern, value] of FAMILIES) if (pattern.test(text)) return value;
    return DEFAULT_FAMILY;
  }

  const escapeXml = (s) =>
    String(s).replace(/[<>&'"]/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", "'": "&apos;", '"': "&quot;" })[c]);

  /** Greedy word wrap into at most ``maxLines`` lines of about ``width`` characters. */
  function wrap(text, width, maxLines) {
    const words = String(text).split(/\s+/).filter(Boolean);
    const lines = [];
    let line = "";
    for (const word of words) {
      if (line && (line + " " + word).length > width) {
        lines.push(line);
        line = word;
      } else {
        line = line ? `${line} ${word}` : word;
      }
    }
    if (line) lines.push(line);
    if (lines.length > maxLines) {
      lines.length = maxLines;
      lines[maxLines - 1] = lines[maxLines - 1].replace(/\s*\S*$/, "") + "…";
    }
    return lines;
  }

  function motif(kind, rnd, hue) {
    const out = [];
    const light = `hsl(${hue} 90% 85%)`;
    if (kind === "stars") {
      for (let i = 0; i < 40; i += 1) {
        out.push(`<circle cx="${(rnd() * 320).toFixed(1)}" cy="${(rnd() * 180).toFixed(1)}" r="${(rnd() * 1.4 + 0.3).toFixed(2)}" fill="#fff" opacity="${(rnd() * 0.7 + 0.3).toFixed(2)}"/>`);
      }
      out.push(`<circle cx="${250 + rnd() * 40}" cy="${30 + rnd() * 30}" r="${18 + rnd() * 14}" fill="none" stroke="${light}" stroke-width="1.5" opacity="0.7"/>`);
    } else if (kind === "moon") {
      const x = 230 + rnd() * 60;
      const y = 30 + rnd() * 25;
      out.push(`<circle cx="${x}" cy="${y}" r="22" fill="#f4ecd8" opacity="0.9"/><circle cx="${x + 9}" cy="${y - 5}" r="19" fill="hsl(${hue} 50% 10%)"/>`);
      for (let i = 0; i < 6; i += 1) {
        const tx = rnd() * 320;
        out.push(`<path d="M${tx} 180 L${tx + 6} ${120 + rnd() * 30} L${tx + 12} 180 Z" fill="#000" opacity="0.55"/>`);
      }
    } else if (kind === "rays") {
      const cx = 260 + rnd() * 40;
      for (let i = 0; i < 14; i += 1) {
        const a = (i / 14) * Math.PI * 2 + rnd() * 0.2;
        out.push(`<path d="M${cx} 40 L${(cx + Math.cos(a) * 400).toFixed(0)} ${(40 + Math.sin(a) * 400).toFixed(0)} L${(cx + Math.cos(a + 0.12) * 400).toFixed(0)} ${(40 + Math.sin(a + 0.12) * 400).toFixed(0)} Z" fill="${light}" opacity="0.12"/>`);
      }
    } else if (kind === "dots") {
      for (let i = 0; i < 18; i += 1) {
        out.push(`<circle cx="${(rnd() * 320).toFixed(0)}" cy="${(rnd() * 110).toFixed(0)}" r="${(4 + rnd() * 16).toFixed(0)}" fill="hsl(${(hue + rnd() * 120) % 360} 90% 65%)" opacity="0.35"/>`);
      }
    } else if (kind === "bubbles") {
      for (let i = 0; i < 12; i += 1) {
        out.push(`<circle cx="${(rnd() * 320).toFixed(0)}" cy="${(rnd() * 120).toFixed(0)}" r="${(6 + rnd() * 22).toFixed(0)}" fill="none" stroke="#fff" stroke-width="2" opacity="0.35"/>`);
      }
    } else if (kind === "waves") {
      for (let i = 0; i < 5; i += 1) {
        const y = 20 + i * 18 + rnd() * 8;
        out.push(`<path d="M0 ${y} C80 ${y - 20} 160 ${y + 20} 320 ${y}" stroke="${light}" stroke-width="2" fill="none" opacity="${0.15 + i * 0.05}"/>`);
      }
    } else if (kind === "lines") {
      for (let i = 0; i < 9; i += 1) {
        const y = 10 + i * 12;
        out.push(`<path d="M0 ${y + rnd() * 6} Q160 ${y - 12 + rnd() * 24} 320 ${y + rnd() * 6}" stroke="${light}" stroke-width="1" fill="none" opacity="0.25"/>`);
      }
    } else {
      out.push(`<rect x="10" y="10" width="300" height="160" fill="none" stroke="${light}" stroke-width="1.5" opacity="0.35"/>`);
      out.push(`<circle cx="${60 + rnd() * 200}" cy="${40 + rnd() * 30}" r="${30 + rnd() * 30}" fill="${light}" opacity="0.08"/>`);
    }
    return out.join("");
  }

  /** The poster of one title as an SVG document (320 x 180). */
  function svg(title) {
    const id = title.title_id ?? title.id ?? title.title;
    const name = title.title ?? title.name ?? id;
    const genres = Array.isArray(title.genres) ? title.genres : [];
    const [baseHue, sat, dark, kind, font] = family(genres);
    const seed = hash(id);
    const rnd = random(seed);
    const hue = (baseHue + (seed % 50) - 25 + 360) % 360;
    const lines = wrap(name, 16, 3);
    const size = lines.some((l) => l.length > 13) ? 24 : 30;
    const top = 168 - lines.length * (size + 2);
    const text = lines
      .map((l, i) => `<text x="14" y="${top + (i + 1) * (size + 2)}" font-size="${size}">${escapeXml(l)}</text>`)
      .join("");
    const label = escapeXml((genres[0] || title.type || "").toUpperCase());
    return (
      `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 320 180" width="320" height="180">` +
      `<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">` +
      `<stop offset="0" stop-color="hsl(${hue} ${sat}% ${dark + 26}%)"/>` +
      `<stop offset="1" stop-color="hsl(${(hue + 30) % 360} ${sat}% ${dark}%)"/></linearGradient>` +
      `<linearGradient id="s" x1="0" y1="0" x2="0" y2="1"><stop offset="0.35" stop-color="#000" stop-opacity="0"/>` +
      `<stop offset="1" stop-color="#000" stop-opacity="0.75"/></linearGradient></defs>` +
      `<rect width="320" height="180" fill="url(#g)"/>${motif(kind, rnd, hue)}<rect width="320" height="180" fill="url(#s)"/>` +
      `<text x="306" y="20" text-anchor="end" font-family="'DejaVu Sans', sans-serif" font-size="10" letter-spacing="2" fill="#fff" opacity="0.75">${label}</text>` +
      `<g font-family="${escapeXml(font)}" font-weight="700" fill="#fff">${text}</g></svg>`
    );
  }

  /** Paint ``el`` with the poster of ``title``. */
  function paint(el, title) {
    el.classList.add("art");
    el.style.backgroundImage = `url("data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg(title))}")`;
    el.setAttribute("role", "img");
    el.setAttribute("aria-label", `Poster: ${title.title ?? title.name ?? ""}`);
  }

  window.MarqueePoster = { svg, paint, family };
})();
