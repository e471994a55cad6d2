import { lstat, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';
import { canonicalJson, sha256 } from '../../../contract/canonical-json.js';
import type { Config } from '../../config.js';

/**
 * The local substrate has no image store: an image name stands for host paths bound read-only at
 * the same place in the sandbox. Without `local.images` every image is this Debian host's own
 * userland; with it, only the images it names can run.
 */
export const defaultImagePaths: readonly string[] = [
  '/usr',
  // Symlinks into /usr on a merged-/usr system (Debian 12): recreated as symlinks, see resolveImage.
  '/bin',
  '/lib',
  '/lib64',
  '/sbin',
  // Debian's tools are symlinks through /etc/alternatives.
  '/etc/alternatives',
  // CA certificates, so the fetch container can reach https remotes.
  '/etc/ssl',
  '/etc/ca-certificates',
  // Name resolution for the containers that keep the host network (fetch, reporter).
  '/etc/resolv.conf',
  '/etc/hosts',
  '/etc/nsswitch.conf',
  // Libraries in directories listed by /etc/ld.so.conf.d are found through the cache only.
  '/etc/ld.so.cache',
  '/etc/passwd',
  '/etc/group',
  // OCaml-built provers (Coq) find their plugins through findlib's configuration.
  '/etc/ocamlfind.conf',
  // The package database: the check records the installed version of the profile's libraries.
  '/var/lib/dpkg',
];

/** One image as a sandbox sees it: what to bind and which symlinks to recreate. */
export interface ImageLayout {
  image: string;
  /** `sha256:` + sha256 of the canonical JSON of `{ image, paths }`: stable while the mapping is. */
  digest: string;
  /** Host paths bound read-only at the same path. */
  binds: string[];
  /** Host symlinks that point into another path of the image, recreated as they are. */
  symlinks: { path: string; target: string }[];
}

/** Kubernetes' reason for an image it cannot get; the local substrate uses it for an unmapped image. */
export class ImagePullError extends Error {
  override readonly name = 'ImagePullError';
  readonly reason = 'ErrImagePull';
}

type ImageMap = Config['local']['images'];

/** The configured paths of an image, or undefined when it is not mapped. */
export function imagePaths(image: string, images: ImageMap): { paths: readonly string[]; configured: boolean } | undefined {
  if (!images) return { paths: defaultImagePaths, configured: false };
  const mapped = Object.hasOwn(images, image) ? images[image] : undefined;
  return mapped ? { paths: mapped.paths, configured: true } : undefined;
}

export function imageDigest(image: string, paths: readonly string[]): string {
  return `sha256:${sha256(canonicalJson({ image, paths })).toString('hex')}`;
}

/**
 * Looks the image up on this host. A default path the host lacks (e.g. /lib64 on arm64) is left out;
 * a configured path the host lacks is an ErrImagePull, as a missing layer would be. A symlink whose
 * target lies inside another path of the image is recreated as a symlink (binding it would copy the
 * tree a second time and break relative links); any other symlink is bound, and bubblewrap binds
 * what it points to (e.g. /etc/resolv.conf → /run/systemd/resolve/stub-resolv.conf).
 */
export async function resolveImage(image: string, images: ImageMap): Promise<ImageLayout> {
  const mapping = imagePaths(image, images);
  if (!mapping) throw new ImagePullError(`image ${image} has no mapping in local.images`);
  const present: string[] = [];
  for (const p of mapping.paths) {
    const exists = await lstat(p).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
        return false;
      },
    );
    if (exists) present.push(p);
    else if (mapping.configured) throw new ImagePullError(`image ${image} maps ${p}, which does not exist on this host`);
  }
  const layout: ImageLayout = { image, digest: imageDigest(image, mapping.paths), binds: [], symlinks: [] };
  for (const p of present) {
    const stat = await lstat(p);
    if (stat.isSymbolicLink()) {
      const resolved = await realpath(p).catch(() => undefined);
      const inside = resolved !== undefined && present.some((other) => other !== p && isWithin(resolved, other));
      if (inside) {
        layout.symlinks.push({ path: p, target: await readlink(p) });
        continue;
      }
      if (resolved === undefined) throw new ImagePullError(`image ${image} maps ${p}, a dangling symlink on this host`);
    }
    layout.binds.push(p);
  }
  return layout;
}

function isWithin(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}
