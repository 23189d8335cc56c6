package main

import (
	"archive/tar"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// pauseImage is the sandbox image containerd's CRI config names.
const pauseImage = "agora.local/pause:e2e"

// Agora's binaries in the image, at / as in the Dockerfile's final stage.
var agoraBinaries = []string{"agora-master", "agora-agent", "agora", "agora-batch"}

// What the Dockerfile's gcr.io/distroless/static base provides that the
// binaries may rely on: users root, nonroot (65532) and nobody, their
// groups, a world-writable /tmp and nonroot's home. CA certificates are not
// copied (the pods talk only to the apiserver, with the service-account CA).
const (
	etcPasswd = "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
	etcGroup  = "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"
)

// buildImages builds Agora's static binaries and the pause binary, and
// writes both images as OCI-layout tarballs under dir. It returns their
// paths.
func buildImages(o *Options, dir string) (agoraTar, pauseTar string, err error) {
	binDir := filepath.Join(dir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", "", err
	}
	begin := time.Now()
	var pkgs []string
	for _, b := range agoraBinaries {
		pkgs = append(pkgs, "./cmd/"+b)
	}
	if err := goBuild(o.RepoRoot, binDir, pkgs...); err != nil {
		return "", "", err
	}
	if err := goBuild(filepath.Join(o.RepoRoot, "hack", "localnode"), binDir, "./pause"); err != nil {
		return "", "", err
	}
	logf("built %s and pause in %v", strings.Join(agoraBinaries, ", "), time.Since(begin).Round(time.Second))

	files := []layerFile{
		{path: "etc/", mode: 0o755, dir: true},
		{path: "etc/passwd", mode: 0o644, data: etcPasswd},
		{path: "etc/group", mode: 0o644, data: etcGroup},
		{path: "tmp/", mode: 0o1777, dir: true},
		{path: "root/", mode: 0o700, dir: true},
		{path: "home/", mode: 0o755, dir: true},
		{path: "home/nonroot/", mode: 0o700, dir: true, uid: 65532},
	}
	for _, b := range agoraBinaries {
		files = append(files, layerFile{path: b, mode: 0o755, src: filepath.Join(binDir, b)})
	}
	agoraTar = filepath.Join(dir, "agora.oci.tar")
	if err := writeImage(agoraTar, filepath.Join(dir, "agora.layer.tar.gz"), o.Image, files, []string{"/agora-master"}); err != nil {
		return "", "", fmt.Errorf("agora image: %w", err)
	}
	pauseTar = filepath.Join(dir, "pause.oci.tar")
	if err := writeImage(pauseTar, filepath.Join(dir, "pause.layer.tar.gz"), pauseImage,
		[]layerFile{{path: "pause", mode: 0o755, src: filepath.Join(binDir, "pause")}}, []string{"/pause"}); err != nil {
		return "", "", fmt.Errorf("pause image: %w", err)
	}
	return agoraTar, pauseTar, nil
}

func goBuild(dir, out string, pkgs ...string) error {
	args := append([]string{"build", "-trimpath", "-ldflags", "-s -w", "-o", out + "/"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}

type layerFile struct {
	path string // relative to /; directories end in /
	mode int64
	dir  bool
	uid  int
	data string // contents, or
	src  string // a file to copy
}

// writeImage writes a one-layer image on an empty base as an OCI layout
// tarball that `ctr images import` understands, named ref through the
// io.containerd.image.name annotation.
func writeImage(out, layerPath, ref string, files []layerFile, entrypoint []string) error {
	if err := writeLayer(layerPath, files); err != nil {
		return err
	}
	layer, err := tarball.LayerFromFile(layerPath, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return err
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", goruntime.GOARCH
	cf.Created = v1.Time{Time: time.Unix(0, 0).UTC()} // reproducible
	cf.Config.Entrypoint = entrypoint
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.WorkingDir = "/"
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	dir := out + ".d"
	_ = os.RemoveAll(dir)
	defer os.RemoveAll(dir)
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendImage(img,
		layout.WithPlatform(v1.Platform{OS: "linux", Architecture: goruntime.GOARCH}),
		layout.WithAnnotations(map[string]string{
			"io.containerd.image.name":          tag.Name(),
			"org.opencontainers.image.ref.name": tag.TagStr(),
		})); err != nil {
		return err
	}
	return tarDir(dir, out)
}

func writeLayer(path string, files []layerFile) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	// Fastest compression: the layer never leaves this host.
	gz, err := gzip.NewWriterLevel(f, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	epoch := time.Unix(0, 0)
	for _, lf := range files {
		h := &tar.Header{Name: lf.path, Mode: lf.mode, Uid: lf.uid, Gid: lf.uid, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case lf.dir:
			h.Typeflag = tar.TypeDir
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
		case lf.src != "":
			src, err := os.Open(lf.src)
			if err != nil {
				return err
			}
			fi, err := src.Stat()
			if err != nil {
				src.Close()
				return err
			}
			h.Typeflag, h.Size = tar.TypeReg, fi.Size()
			if err := tw.WriteHeader(h); err != nil {
				src.Close()
				return err
			}
			_, err = io.Copy(tw, src)
			src.Close()
			if err != nil {
				return err
			}
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(lf.data))
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if _, err := io.WriteString(tw, lf.data); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return f.Close()
}

// tarDir writes the files under dir into an uncompressed tar at out.
func tarDir(dir, out string) error {
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	err = filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err != nil || path == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		h, err := tar.FileInfoHeader(fi, "")
		if err != nil {
			return err
		}
		h.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			h.Name += "/"
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			src, err := os.Open(path)
			if err != nil {
				return err
			}
			defer src.Close()
			_, err = io.Copy(tw, src)
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return f.Close()
}

// importImage loads an image tarball into containerd's k8s.io namespace,
// where the CRI plugin (and so the kubelet) finds it.
func importImage(socket, tarPath string) error {
	out, err := exec.Command("ctr", "--address", socket, "-n", "k8s.io", "images", "import", tarPath).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr images import %s: %w: %s", filepath.Base(tarPath), err, out)
	}
	return nil
}
