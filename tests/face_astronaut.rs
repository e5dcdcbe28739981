//! BlazeFace finds the face in scikit-image's astronaut photo (Eileen Collins, NASA, public domain) where a
//! person measured it by hand, and FaceMesh puts the lips in the lower half of that box.

mod common;

use deepfake_guard::analysis::crop::{Normalize, Roi, sample_roi};
use deepfake_guard::analysis::face::{BlazeFaceDecoder, iou, mesh};
use deepfake_guard::analysis::frame::I420Buf;
use deepfake_guard::media::file::{FileSource, MediaEvent};

/// Face box measured by hand on the 512x512 photo (hairline to chin, cheek to cheek), `[x0, y0, x1, y1]`.
const HAND_BOX: [f32; 4] = [177.0, 75.0, 272.0, 168.0];

fn astronaut() -> I420Buf {
    let path = common::face_photo("astronaut");
    let mut src = FileSource::open(&path, None).expect("PNG opens through FFmpeg");
    loop {
        match src.next_event().expect("decodes") {
            Some(MediaEvent::Video(f)) => {
                let i = f.image;
                let mut buf = I420Buf::default();
                buf.reshape(i.width, i.height);
                for r in 0..i.height as usize {
                    let w = i.width as usize;
                    buf.y[r * w..(r + 1) * w].copy_from_slice(&i.y[r * i.stride_y..r * i.stride_y + w]);
                }
                let (cw, ch) = (i.width.div_ceil(2) as usize, i.height.div_ceil(2) as usize);
                for r in 0..ch {
                    buf.u[r * cw..(r + 1) * cw].copy_from_slice(&i.u[r * i.stride_u..r * i.stride_u + cw]);
                    buf.v[r * cw..(r + 1) * cw].copy_from_slice(&i.v[r * i.stride_v..r * i.stride_v + cw]);
                }
                return buf;
            }
            Some(_) => continue,
            None => panic!("no picture in {}", path.display()),
        }
    }
}

#[test]
fn blazeface_finds_the_astronaut_and_facemesh_the_lips() {
    let mut models = common::models();
    let img = astronaut();
    let view = img.view();
    assert_eq!((view.width, view.height), (512, 512));

    let roi = Roi::whole(view.width, view.height);
    let mut tensor = Vec::new();
    sample_roi(&view, &roi, &Normalize::from_preprocessing(&models.detector.pre), &mut tensor);
    let mut decoder = BlazeFaceDecoder::new(models.detector.pre.size);
    let raw = models.detector.run(&tensor).expect("detector runs");
    let mut found = Vec::new();
    decoder.decode(&raw.scores, &raw.boxes, &roi, &mut found);
    assert_eq!(found.len(), 1, "exactly one face: {found:?}");
    let face = found[0];
    let overlap = iou(&face.bbox, &HAND_BOX);
    println!("detected {:?} score {:.3}; IoU with the hand-measured box {overlap:.3}", face.bbox, face.score);
    assert!(overlap > 0.7, "IoU {overlap} with hand box; detected {:?}", face.bbox);

    // Landmarks on the eye-aligned crop, mapped back to the photo.
    let crop = face.roi(1.5);
    sample_roi(&view, &crop, &Normalize::from_preprocessing(&models.landmarks.pre), &mut tensor);
    let n = models.landmarks.pre.size;
    let (points, flag) = models.landmarks.run(&tensor).expect("landmarks run");
    assert!(flag > 0.0, "FaceMesh sees a face (logit {flag})");
    let [x0, y0, x1, y1] = face.bbox;
    let mid_y = (y0 + y1) / 2.0;
    for &i in &mesh::LIPS {
        let (x, y) = crop.to_frame(n, points[3 * i], points[3 * i + 1]);
        assert!(
            x > x0 && x < x1 && y > mid_y && y < y1,
            "lip landmark {i} at ({x:.0}, {y:.0}) outside the lower half of {:?}",
            face.bbox
        );
    }
}

#[test]
fn an_empty_picture_has_no_face() {
    let mut models = common::models();
    let mut img = I420Buf::default();
    img.reshape(320, 240);
    img.y.iter_mut().enumerate().for_each(|(i, v)| *v = (16 + (i % 7) * 30) as u8);
    let roi = Roi::whole(320, 240);
    let mut tensor = Vec::new();
    sample_roi(&img.view(), &roi, &Normalize::from_preprocessing(&models.detector.pre), &mut tensor);
    let raw = models.detector.run(&tensor).expect("detector runs");
    let mut found = Vec::new();
    BlazeFaceDecoder::new(128).decode(&raw.scores, &raw.boxes, &roi, &mut found);
    assert!(found.is_empty(), "{found:?}");
}
